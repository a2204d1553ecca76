//! Hostile inputs and failures: limits, worker sandbox, containment, faults, fuzz regressions.

mod bounds;
mod containment;
mod faults;
mod fuzz_regressions;
mod hostile;
mod memory;
mod sandbox;
