//! A hand-written protobuf codec for `tf.train.Example`
//! (`tensorflow/core/example/{example,feature}.proto`):
//!
//! ```text
//! message Example   { Features features = 1; }
//! message Features  { map<string, Feature> feature = 1; }
//! message Feature   { oneof kind { BytesList bytes_list = 1; FloatList float_list = 2; Int64List int64_list = 3; } }
//! message BytesList { repeated bytes value = 1; }
//! message FloatList { repeated float value = 1 [packed = true]; }
//! message Int64List { repeated int64 value = 1 [packed = true]; }
//! ```
//!
//! Decoding follows protobuf's rules, so whatever TensorFlow (or any protobuf library) writes is
//! read: packed *and* unpacked repeated floats and int64s, unknown fields skipped, a map entry given
//! twice keeps the last value, an embedded message given twice is merged (its lists concatenated),
//! and in the `kind` oneof the last list given wins. Encoding writes what TensorFlow writes: packed
//! lists, map entries in key order (TensorFlow's deterministic serialization), and an empty list as
//! an empty (present) list.

use std::collections::BTreeMap;

/// One feature of an [`Example`]: a list of byte strings, of `f32` or of `i64` values.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Feature {
    /// A `Feature` with none of the three lists set (`tf.train.Feature()`).
    #[default]
    Unset,
    /// `bytes_list`: byte strings (ids, labels as text, encoded images).
    Bytes(Vec<Vec<u8>>),
    /// `float_list`: 32-bit floats (embeddings, features).
    Float(Vec<f32>),
    /// `int64_list`: 64-bit integers (labels, multi-hot words, counts).
    Int64(Vec<i64>),
}

impl Feature {
    /// The name of the list, as in the proto: `bytes_list`, `float_list`, `int64_list` or `unset`.
    pub fn kind(&self) -> &'static str {
        match self {
            Feature::Unset => "unset",
            Feature::Bytes(_) => "bytes_list",
            Feature::Float(_) => "float_list",
            Feature::Int64(_) => "int64_list",
        }
    }

    /// Number of values in the list (0 when unset).
    pub fn len(&self) -> usize {
        match self {
            Feature::Unset => 0,
            Feature::Bytes(v) => v.len(),
            Feature::Float(v) => v.len(),
            Feature::Int64(v) => v.len(),
        }
    }

    /// Whether the list holds no value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A `tf.train.Example`: named features. Keys are kept sorted, so equal examples compare equal and
/// encode to the same bytes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Example {
    /// The features by name (`features.feature` in the proto).
    pub features: BTreeMap<String, Feature>,
}

/// Why bytes are not a valid `tf.train.Example`: what was expected and at which byte of the record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("byte {offset}: {message}")]
pub struct DecodeError {
    /// Byte offset in the record where decoding failed.
    pub offset: usize,
    /// What is wrong.
    pub message: String,
}

impl Example {
    /// An example without features.
    pub fn new() -> Self {
        Self::default()
    }

    /// The feature `name`, if present.
    pub fn get(&self, name: &str) -> Option<&Feature> {
        self.features.get(name)
    }

    /// Sets feature `name`, replacing any previous value.
    pub fn insert(&mut self, name: impl Into<String>, feature: Feature) {
        self.features.insert(name.into(), feature);
    }

    /// Decodes a serialized `tf.train.Example` (one TFRecord record).
    ///
    /// # Errors
    /// [`DecodeError`] with the byte offset for truncated or malformed protobuf, a map key that is
    /// not UTF-8, or a field of the right number but the wrong wire type.
    pub fn decode(bytes: &[u8]) -> Result<Example, DecodeError> {
        let mut example = Example::new();
        let mut r = Reader { buf: bytes, pos: 0, base: 0 };
        while let Some((field, wire)) = r.key()? {
            if field == 1 && wire == LEN {
                let mut features = r.sub()?;
                decode_features(&mut features, &mut example.features)?;
            } else if field == 1 {
                return Err(r.wrong_wire(field, wire, "Example"));
            } else {
                r.skip(field, wire)?;
            }
        }
        Ok(example)
    }

    /// Serializes the example as TensorFlow does (packed lists, entries in key order).
    pub fn encode(&self) -> Vec<u8> {
        let mut features = Vec::new();
        let mut entry = Vec::new();
        let mut value = Vec::new();
        for (name, feature) in &self.features {
            value.clear();
            encode_feature(feature, &mut value);
            entry.clear();
            put_len_field(&mut entry, 1, name.as_bytes());
            put_len_field(&mut entry, 2, &value);
            put_len_field(&mut features, 1, &entry);
        }
        let mut out = Vec::with_capacity(features.len() + 6);
        put_len_field(&mut out, 1, &features);
        out
    }
}

const VARINT: u8 = 0;
const I64: u8 = 1;
const LEN: u8 = 2;
const I32: u8 = 5;

fn decode_features(r: &mut Reader<'_>, out: &mut BTreeMap<String, Feature>) -> Result<(), DecodeError> {
    while let Some((field, wire)) = r.key()? {
        if field == 1 && wire == LEN {
            let mut entry = r.sub()?;
            let mut key = String::new();
            let mut value = Feature::Unset;
            while let Some((field, wire)) = entry.key()? {
                match (field, wire) {
                    (1, LEN) => {
                        let at = entry.offset();
                        let bytes = entry.bytes()?;
                        key = std::str::from_utf8(bytes)
                            .map_err(|e| DecodeError {
                                offset: at,
                                message: format!("feature name is not UTF-8: {e}"),
                            })?
                            .to_owned();
                    }
                    (2, LEN) => {
                        let mut sub = entry.sub()?;
                        decode_feature(&mut sub, &mut value)?;
                    }
                    (1 | 2, _) => return Err(entry.wrong_wire(field, wire, "a map entry")),
                    _ => entry.skip(field, wire)?,
                }
            }
            // Protobuf maps: a key given again replaces the earlier entry.
            out.insert(key, value);
        } else if field == 1 {
            return Err(r.wrong_wire(field, wire, "Features"));
        } else {
            r.skip(field, wire)?;
        }
    }
    Ok(())
}

fn decode_feature(r: &mut Reader<'_>, value: &mut Feature) -> Result<(), DecodeError> {
    while let Some((field, wire)) = r.key()? {
        match (field, wire) {
            (1..=3, LEN) => {
                let mut list = r.sub()?;
                // A oneof member given twice is merged; a different member replaces it.
                let same = matches!(
                    (field, &*value),
                    (1, Feature::Bytes(_)) | (2, Feature::Float(_)) | (3, Feature::Int64(_))
                );
                if !same {
                    *value = match field {
                        1 => Feature::Bytes(Vec::new()),
                        2 => Feature::Float(Vec::new()),
                        _ => Feature::Int64(Vec::new()),
                    };
                }
                match value {
                    Feature::Bytes(v) => decode_bytes_list(&mut list, v)?,
                    Feature::Float(v) => decode_float_list(&mut list, v)?,
                    Feature::Int64(v) => decode_int64_list(&mut list, v)?,
                    Feature::Unset => {}
                }
            }
            (1..=3, _) => return Err(r.wrong_wire(field, wire, "Feature")),
            _ => r.skip(field, wire)?,
        }
    }
    Ok(())
}

fn decode_bytes_list(r: &mut Reader<'_>, out: &mut Vec<Vec<u8>>) -> Result<(), DecodeError> {
    while let Some((field, wire)) = r.key()? {
        match (field, wire) {
            (1, LEN) => out.push(r.bytes()?.to_vec()),
            (1, _) => return Err(r.wrong_wire(field, wire, "BytesList")),
            _ => r.skip(field, wire)?,
        }
    }
    Ok(())
}

fn decode_float_list(r: &mut Reader<'_>, out: &mut Vec<f32>) -> Result<(), DecodeError> {
    while let Some((field, wire)) = r.key()? {
        match (field, wire) {
            (1, LEN) => {
                let at = r.offset();
                let packed = r.bytes()?;
                if packed.len() % 4 != 0 {
                    return Err(DecodeError {
                        offset: at,
                        message: format!("packed float list of {} bytes, not a multiple of 4", packed.len()),
                    });
                }
                out.reserve(packed.len() / 4);
                out.extend(packed.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])));
            }
            (1, I32) => out.push(f32::from_bits(r.fixed32()?)),
            (1, _) => return Err(r.wrong_wire(field, wire, "FloatList")),
            _ => r.skip(field, wire)?,
        }
    }
    Ok(())
}

fn decode_int64_list(r: &mut Reader<'_>, out: &mut Vec<i64>) -> Result<(), DecodeError> {
    while let Some((field, wire)) = r.key()? {
        match (field, wire) {
            (1, LEN) => {
                let mut packed = r.sub()?;
                while !packed.at_end() {
                    out.push(packed.varint()? as i64);
                }
            }
            (1, VARINT) => out.push(r.varint()? as i64),
            (1, _) => return Err(r.wrong_wire(field, wire, "Int64List")),
            _ => r.skip(field, wire)?,
        }
    }
    Ok(())
}

fn encode_feature(feature: &Feature, out: &mut Vec<u8>) {
    let mut list = Vec::new();
    let field = match feature {
        Feature::Unset => return,
        Feature::Bytes(values) => {
            for v in values {
                put_len_field(&mut list, 1, v);
            }
            1
        }
        Feature::Float(values) => {
            if !values.is_empty() {
                let packed: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
                put_len_field(&mut list, 1, &packed);
            }
            2
        }
        Feature::Int64(values) => {
            if !values.is_empty() {
                let mut packed = Vec::with_capacity(values.len());
                for &v in values {
                    put_varint(&mut packed, v as u64);
                }
                put_len_field(&mut list, 1, &packed);
            }
            3
        }
    };
    put_len_field(out, field, &list);
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_len_field(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_varint(out, u64::from(field << 3 | u32::from(LEN)));
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// A cursor over a protobuf message; `base` is its offset in the whole record, for error messages.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Reader<'a> {
    fn offset(&self) -> usize {
        self.base + self.pos
    }

    fn at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn error(&self, message: impl Into<String>) -> DecodeError {
        DecodeError { offset: self.offset(), message: message.into() }
    }

    fn wrong_wire(&self, field: u32, wire: u8, message: &str) -> DecodeError {
        self.error(format!("field {field} of {message} has wire type {wire}, which protobuf does not allow for it"))
    }

    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut value = 0u64;
        for i in 0..10 {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(self.error("truncated varint"));
            };
            self.pos += 1;
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(self.error("varint longer than 10 bytes"))
    }

    /// The next field number and wire type, or `None` at the end of the message.
    fn key(&mut self) -> Result<Option<(u32, u8)>, DecodeError> {
        if self.at_end() {
            return Ok(None);
        }
        let at = self.offset();
        let key = self.varint()?;
        let field = key >> 3;
        if field == 0 || field > u64::from(u32::MAX >> 3) {
            return Err(DecodeError { offset: at, message: format!("invalid field number {field}") });
        }
        Ok(Some((field as u32, (key & 7) as u8)))
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(len).filter(|&e| e <= self.buf.len()).ok_or_else(|| {
            self.error(format!(
                "length {len} runs past the end of the message ({} bytes left)",
                self.buf.len() - self.pos
            ))
        })?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = self.varint()?;
        let len = usize::try_from(len).map_err(|_| self.error(format!("length {len} too large")))?;
        self.take(len)
    }

    /// The next length-delimited field as a message of its own.
    fn sub(&mut self) -> Result<Reader<'a>, DecodeError> {
        let len = self.varint()?;
        let len = usize::try_from(len).map_err(|_| self.error(format!("length {len} too large")))?;
        let base = self.offset();
        Ok(Reader { buf: self.take(len)?, pos: 0, base })
    }

    fn fixed32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn skip(&mut self, field: u32, wire: u8) -> Result<(), DecodeError> {
        match wire {
            VARINT => self.varint().map(drop),
            I64 => self.take(8).map(drop),
            LEN => self.bytes().map(drop),
            I32 => self.take(4).map(drop),
            _ => Err(self.error(format!("field {field} has wire type {wire} (groups are not supported)"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpacked_lists_are_read() {
        // Feature{float_list{value: 1.5 (fixed32), value: 2.0}} and Feature{int64_list{1, -1}}, unpacked.
        let mut float_list = Vec::new();
        for v in [1.5f32, 2.0] {
            float_list.push(1 << 3 | I32);
            float_list.extend_from_slice(&v.to_le_bytes());
        }
        let mut int_list = Vec::new();
        for v in [1i64, -1] {
            int_list.push(1 << 3 | VARINT);
            put_varint(&mut int_list, v as u64);
        }
        let entry = |name: &str, kind: u32, list: &[u8]| {
            let mut feature = Vec::new();
            put_len_field(&mut feature, kind, list);
            let mut entry = Vec::new();
            put_len_field(&mut entry, 1, name.as_bytes());
            put_len_field(&mut entry, 2, &feature);
            entry
        };
        let mut features = Vec::new();
        put_len_field(&mut features, 1, &entry("f", 2, &float_list));
        put_len_field(&mut features, 1, &entry("i", 3, &int_list));
        let mut bytes = Vec::new();
        put_len_field(&mut bytes, 1, &features);
        let ex = Example::decode(&bytes).unwrap();
        assert_eq!(ex.get("f"), Some(&Feature::Float(vec![1.5, 2.0])));
        assert_eq!(ex.get("i"), Some(&Feature::Int64(vec![1, -1])));
    }

    #[test]
    fn truncated_and_bad_wire_types_are_errors() {
        let mut ex = Example::new();
        ex.insert("id", Feature::Bytes(vec![b"abc".to_vec()]));
        let bytes = ex.encode();
        for cut in 1..bytes.len() {
            assert!(Example::decode(&bytes[..cut]).is_err(), "cut at {cut} decoded");
        }
        // Field 1 of Example as a varint.
        let err = Example::decode(&[0x08, 0x01]).unwrap_err();
        assert!(err.message.contains("wire type 0"), "{err}");
        // An empty message is an empty example.
        assert_eq!(Example::decode(&[]).unwrap(), Example::new());
    }
}
