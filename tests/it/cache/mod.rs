//! The mount's output cache: the disk tier across mounts, remembered failures.

mod disk;
