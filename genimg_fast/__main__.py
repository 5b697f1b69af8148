"""`python -m genimg_fast ...`: the same as `genimg-fast ...`, exit status included."""
import sys

from genimg_fast.cli import main

if __name__ == "__main__":  # not when a tool imports every module of the package
    sys.exit(main())
