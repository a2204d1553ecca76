//! Runtime SIMD selection, one switch for every accelerated path (ours and the crates').
//!
//! `THUMBFS_SIMD=off` in the environment forces the generic code everywhere, so the test
//! suite can exercise the paths an older x86 or an ARM machine takes on a machine with AVX2.

use std::sync::OnceLock;

/// False when `THUMBFS_SIMD=off` (or `none`/`0`): use generic code paths only.
pub fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| {
        !matches!(
            std::env::var("THUMBFS_SIMD").as_deref(),
            Ok("off" | "none" | "0" | "generic")
        )
    })
}

/// True when AVX2 code may run: the CPU has it and SIMD is not switched off.
pub fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        enabled() && std::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}
