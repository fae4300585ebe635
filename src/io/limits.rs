//! Limits checked before allocating: the memory a size from a flag or a file would need, and the
//! length of one line of a text file.

use std::io::{self, BufRead};

/// The longest line a text reader accepts (64 MiB). A line longer than this is not a neighbor
/// graph or a citation: it is a binary file or `/dev/zero`, and reading it whole would exhaust
/// memory.
pub const MAX_LINE_BYTES: usize = 64 << 20;

/// The memory budget when `/proc/meminfo` cannot be read (off Linux, or in a sandbox): 64 GiB.
pub const FALLBACK_MEMORY_BYTES: u64 = 64 << 30;

/// The memory an allocation may take: `MemAvailable` of `/proc/meminfo` (the memory the kernel can
/// hand out without swapping), else [`FALLBACK_MEMORY_BYTES`].
pub fn available_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            kib.checked_mul(1024)
        })
        .unwrap_or(FALLBACK_MEMORY_BYTES)
}

/// A size that would need more memory than is available.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} needs {} but only {} of memory is available", human(*needed), human(u128::from(*available)))]
pub struct MemoryLimitError {
    /// What would be allocated, naming the flag or field, e.g. `--n 1000000 × --dim 128 features`.
    pub what: String,
    /// The bytes it needs (saturated at `u128::MAX` when the product overflows).
    pub needed: u128,
    /// The bytes available ([`available_memory`]).
    pub available: u64,
}

/// Checks that `count` items of `item_bytes` bytes each fit in the available memory.
///
/// # Errors
/// [`MemoryLimitError`] naming `what` when `count × item_bytes` exceeds [`available_memory`]
/// (an overflowing product always does).
pub fn check_memory(what: impl Into<String>, count: u128, item_bytes: u128) -> Result<(), MemoryLimitError> {
    let needed = count.saturating_mul(item_bytes);
    let available = available_memory();
    if needed > u128::from(available) {
        Err(MemoryLimitError { what: what.into(), needed, available })
    } else {
        Ok(())
    }
}

/// `bytes` with a binary unit, e.g. `1.5 GiB`.
fn human(bytes: u128) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// [`BufRead::read_until`]`(b'\n')` that stops with an `InvalidData` error once the line exceeds
/// `max` bytes, instead of growing `buf` without limit. Returns the bytes read (0 at the end).
///
/// # Errors
/// The reader's `io::Error`, or `InvalidData` "line longer than … bytes".
pub fn read_line_limited(reader: &mut dyn BufRead, buf: &mut Vec<u8>, max: usize) -> io::Result<usize> {
    let mut total = 0;
    loop {
        let available = match reader.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok(total);
        }
        let (take, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (available.len(), false),
        };
        if total + take > max {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("line longer than the limit of {max} bytes (a binary file?)"),
            ));
        }
        buf.extend_from_slice(&available[..take]);
        reader.consume(take);
        total += take;
        if done {
            return Ok(total);
        }
    }
}

/// Reads all of `reader` into `out`, failing with `InvalidData` once more than `max` bytes came.
///
/// # Errors
/// The reader's `io::Error`, or `InvalidData` naming the limit.
pub fn read_to_end_limited(reader: &mut dyn io::Read, out: &mut Vec<u8>, max: u64) -> io::Result<usize> {
    use io::Read;
    let read = reader.take(max.saturating_add(1)).read_to_end(out)?;
    if read as u64 > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than the {} of memory available (an endless file such as /dev/zero?)", human(max.into())),
        ));
    }
    Ok(read)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn long_lines_stop_at_the_limit() {
        let mut zeros = io::BufReader::new(io::repeat(0).take(1 << 20));
        let mut buf = Vec::new();
        let err = read_line_limited(&mut zeros, &mut buf, 1000).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(buf.len() <= 1000);
        let mut text: &[u8] = b"ab\ncd";
        buf.clear();
        assert_eq!(read_line_limited(&mut text, &mut buf, 10).unwrap(), 3);
        buf.clear();
        assert_eq!(read_line_limited(&mut text, &mut buf, 10).unwrap(), 2);
        assert_eq!(buf, b"cd");
        assert_eq!(read_line_limited(&mut text, &mut buf, 10).unwrap(), 0);
    }

    #[test]
    fn overflowing_sizes_fail_the_memory_check() {
        let err = check_memory("--n × --dim", u128::from(u64::MAX), u128::from(u64::MAX)).unwrap_err();
        assert!(err.to_string().contains("--n × --dim"), "{err}");
        assert!(check_memory("small", 10, 4).is_ok());
    }
}
