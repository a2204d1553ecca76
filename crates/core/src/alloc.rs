//! Fallible allocation for buffers whose size comes from an image or a spec.
//!
//! `vec![0; n]` and `Vec::with_capacity(n)` abort the whole process when the allocator
//! refuses; in the mount that is every reader's filesystem gone. Every buffer sized by input
//! dimensions goes through here instead, so a refused allocation is an
//! [`Error::OutOfMemory`] (EIO for that render) and the daemon carries on.

use crate::error::{Error, Result};

fn refused<T>(what: &'static str, n: usize) -> Error {
    Error::OutOfMemory {
        what,
        bytes: (n as u64).saturating_mul(std::mem::size_of::<T>() as u64),
    }
}

/// An empty vector with room for `n` elements, or an error naming `what`.
pub fn with_capacity<T>(n: usize, what: &'static str) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| refused::<T>(what, n))?;
    Ok(v)
}

/// `n` copies of `value` (`vec![value; n]`), or an error naming `what`.
pub fn filled<T: Clone>(n: usize, value: T, what: &'static str) -> Result<Vec<T>> {
    let mut v = with_capacity(n, what)?;
    v.resize(n, value);
    Ok(v)
}

/// Makes room for `extra` more elements in `v`, or an error naming `what`.
pub fn reserve<T>(v: &mut Vec<T>, extra: usize, what: &'static str) -> Result<()> {
    v.try_reserve_exact(extra)
        .map_err(|_| refused::<T>(what, v.len().saturating_add(extra)))
}

/// Resizes `v` to `n` elements (new ones are `value`), or an error naming `what`.
pub fn resize<T: Clone>(v: &mut Vec<T>, n: usize, value: T, what: &'static str) -> Result<()> {
    if n > v.len() {
        reserve(v, n - v.len(), what)?;
    }
    v.resize(n, value);
    Ok(())
}

/// The items of `iter` (`iter.collect()`) in a vector allocated for its exact length, or an
/// error naming `what`.
pub fn collect<T>(iter: impl ExactSizeIterator<Item = T>, what: &'static str) -> Result<Vec<T>> {
    let mut v = with_capacity(iter.len(), what)?;
    v.extend(iter);
    Ok(v)
}

/// `a * b * ...` as a buffer length, or an error naming `what` when it overflows `usize`.
pub fn len(factors: &[usize], what: &'static str) -> Result<usize> {
    factors
        .iter()
        .try_fold(1usize, |acc, &f| acc.checked_mul(f))
        .ok_or(Error::OutOfMemory {
            what,
            bytes: u64::MAX,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_allocation_is_an_error_not_an_abort() {
        let e = with_capacity::<u64>(usize::MAX / 4, "test buffer").unwrap_err();
        assert!(e.to_string().contains("test buffer"), "{e}");
        assert_eq!(e.errno(), libc::EIO);
        let mut v = vec![1u8];
        assert!(resize(&mut v, usize::MAX / 2, 0, "grow").is_err());
        assert_eq!(filled(3, 7u8, "small").unwrap(), [7, 7, 7]);
        assert_eq!(
            collect([1, 2].iter().map(|x| x * 2), "doubled").unwrap(),
            [2, 4]
        );
        assert!(len(&[usize::MAX, 2], "rows").is_err());
    }
}
