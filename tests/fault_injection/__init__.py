"""Fault injection: what a careful user, an attacker, a scheduler or a full disk can do to a run,
and what each must end in. One module a kind of fault:
  test_code_in_files.py      a state or checkpoint naming Python code: refused, never run
  test_damaged_files.py      empty, cut off, garbage or wrong-shaped files: one line naming them
  test_bad_options.py        options and paths out of range, unwritable, a full disk: one line, exit 2
  test_run_folder.py         one live run per --out; kill -9 leaves no stale lock; no silent restart
  test_resume_and_kills.py   --resume with another --amp refused; periodic saves; SIGTERM saves
  test_divergence.py         a NaN or Inf loss stops the run, earlier files intact
  test_translate_outputs.py  translate keeps every input's outputs
  test_bce_probabilities.py  'bce' on values outside [0, 1] raises where torch's BCELoss does
"""
