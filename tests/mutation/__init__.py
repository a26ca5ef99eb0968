"""The mutation run of scripts/mutation: the mutants, the traced choice of tests, the runner."""
