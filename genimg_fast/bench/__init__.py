"""The benchmark suite behind `genimg-fast bench`: side-by-side timings in one process."""
