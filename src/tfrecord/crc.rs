//! CRC-32C (Castagnoli), the checksum of TFRecord framing, and TensorFlow's masking of it.
//!
//! Table-driven, eight bytes per step ("slicing by 8"): about 1.5 GB/s on one core, so checking a
//! record costs far less than reading it. No crate dependency: the `crc32c` crate is not in the
//! offline registry, and `crc32fast` computes the other CRC-32 (IEEE).

/// The reflected Castagnoli polynomial `0x1EDC6F41`.
const POLY: u32 = 0x82F6_3B78;

/// `TABLES[k][b]`: the CRC of byte `b` followed by `k` zero bytes.
static TABLES: [[u32; 256]; 8] = make_tables();

const fn make_tables() -> [[u32; 256]; 8] {
    let mut tables = [[0u32; 256]; 8];
    let mut b = 0;
    while b < 256 {
        let mut crc = b as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ POLY } else { crc >> 1 };
            bit += 1;
        }
        tables[0][b] = crc;
        b += 1;
    }
    let mut k = 1;
    while k < 8 {
        let mut b = 0;
        while b < 256 {
            let prev = tables[k - 1][b];
            tables[k][b] = (prev >> 8) ^ tables[0][(prev & 0xff) as usize];
            b += 1;
        }
        k += 1;
    }
    tables
}

/// The CRC-32C of `data` (initial value and final xor `0xFFFF_FFFF`, as in iSCSI and TensorFlow).
pub fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let lo = crc ^ u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        let t = &TABLES;
        crc = t[7][(lo & 0xff) as usize]
            ^ t[6][((lo >> 8) & 0xff) as usize]
            ^ t[5][((lo >> 16) & 0xff) as usize]
            ^ t[4][(lo >> 24) as usize]
            ^ t[3][c[4] as usize]
            ^ t[2][c[5] as usize]
            ^ t[1][c[6] as usize]
            ^ t[0][c[7] as usize];
    }
    for &b in chunks.remainder() {
        crc = (crc >> 8) ^ TABLES[0][((crc ^ u32::from(b)) & 0xff) as usize];
    }
    !crc
}

/// TensorFlow's masked CRC (`tensorflow/core/lib/hash/crc32c.h`): rotate right by 15 bits and add
/// a constant, so that a CRC stored inside CRC'd data does not make the outer CRC degenerate.
pub fn masked_crc32c(data: &[u8]) -> u32 {
    let crc = crc32c(data);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        // The standard check value of CRC-32C, and RFC 3720's (iSCSI) test vectors.
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
        assert_eq!(crc32c(&[0xffu8; 32]), 0x62A8_AB43);
        let ascending: Vec<u8> = (0..32).collect();
        assert_eq!(crc32c(&ascending), 0x46DD_794E);
        assert_eq!(crc32c(b""), 0);
    }

    #[test]
    fn sliced_equals_bytewise() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        for len in [0, 1, 7, 8, 9, 15, 16, 17, 999, 1000] {
            let mut crc = !0u32;
            for &b in &data[..len] {
                crc = (crc >> 8) ^ TABLES[0][((crc ^ u32::from(b)) & 0xff) as usize];
            }
            assert_eq!(crc32c(&data[..len]), !crc, "length {len}");
        }
    }

    #[test]
    fn masking_matches_tensorflow() {
        // `((0xE3069283 >> 15) | (0xE3069283 << 17)) + 0xa282ead8 (mod 2^32)`, worked out by hand.
        assert_eq!(masked_crc32c(b"123456789"), 0xC78A_B0E5);
    }
}
