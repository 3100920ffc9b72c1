"""The simulated crowd and the synthetic corpus: benchmark and test tooling that drives the
growth engine through its public service like any other client. Not growth rules."""
