//! The format of a stored output, shared by disk files and shared-tier objects: the bytes,
//! then their length and checksum (16 bytes, little-endian), so that a damaged or truncated
//! copy is detected and never served.

use xxhash_rust::xxh3::xxh3_64;

/// Bytes after the output: length and checksum.
pub const TRAILER: usize = 16;

/// The trailer that follows `data`.
pub fn trailer(data: &[u8]) -> [u8; TRAILER] {
    let mut t = [0; TRAILER];
    t[..8].copy_from_slice(&(data.len() as u64).to_le_bytes());
    t[8..].copy_from_slice(&xxh3_64(data).to_le_bytes());
    t
}

/// Checks the trailer; returns the payload length when intact.
pub fn verify(data: &[u8]) -> Option<usize> {
    let n = data.len().checked_sub(TRAILER)?;
    let len = u64::from_le_bytes(data[n..n + 8].try_into().ok()?);
    let sum = u64::from_le_bytes(data[n + 8..].try_into().ok()?);
    (len == n as u64 && xxh3_64(&data[..n]) == sum).then_some(n)
}

/// `data` without its trailer, or None when the trailer does not match.
pub fn unseal(mut data: Vec<u8>) -> Option<Vec<u8>> {
    let n = verify(&data)?;
    data.truncate(n);
    Some(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intact_copies_pass_and_damaged_ones_do_not() {
        let mut data = b"hello".to_vec();
        data.extend_from_slice(&trailer(b"hello"));
        assert_eq!(unseal(data.clone()).unwrap(), b"hello");
        assert!(
            unseal(data[..data.len() - 1].to_vec()).is_none(),
            "truncated"
        );
        data[0] ^= 1;
        assert!(unseal(data).is_none(), "flipped bit");
        assert!(unseal(vec![0; 3]).is_none(), "shorter than a trailer");
    }
}
