//! Reads one export data file: gzip'd JSON lines `{"Item":{...}}`, fed chunk by chunk as the S3
//! body arrives, so memory stays bounded whatever the file size.
//!
//! Every check names the file (`s3://bucket/key`) and the line: corrupt or truncated gzip, a line
//! that is not JSON or not `{"Item":{...}}`, an unknown type descriptor, and at the end the item
//! count and the MD5 of the compressed object against the manifest. Nothing is skipped.

use std::io::Write;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use flate2::write::MultiGzDecoder;
use md5::{Digest, Md5};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::{Error, Result};
use crate::item::{Image, Item, json};

/// What the manifest promises about a file (both `None` when the export has no manifest).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Expect {
    pub items: Option<u64>,
    /// Base64 MD5 of the (compressed) object.
    pub md5: Option<String>,
}

/// One item of a file: its line, the item as the line spells it, and its key attributes.
#[derive(Debug)]
pub struct ExportItem {
    pub line: u64,
    pub image: Image,
    pub key: Item,
}

pub struct LineReader {
    /// `s3://bucket/key`, for messages.
    url: String,
    /// The table's key attributes, read out of each item as it is checked.
    key_names: Arc<[String]>,
    /// Decompressed bytes land in the inner Vec; complete lines are taken out after every chunk.
    gz: MultiGzDecoder<Vec<u8>>,
    md5: Md5,
    /// Lines seen so far (1-based number of the last complete line).
    line: u64,
    items: u64,
}

impl LineReader {
    pub fn new(url: impl Into<String>, key_names: Arc<[String]>) -> Self {
        Self {
            url: url.into(),
            key_names,
            gz: MultiGzDecoder::new(Vec::with_capacity(64 * 1024)),
            md5: Md5::new(),
            line: 0,
            items: 0,
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Lines read so far (the line number of the last complete line).
    pub fn line(&self) -> u64 {
        self.line
    }

    /// Feeds the next chunk of the compressed object; returns the items of the lines it completed,
    /// each with its line number.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<ExportItem>> {
        self.md5.update(chunk);
        if let Err(e) = self.gz.write_all(chunk) {
            return Err(self.gzip_error(e));
        }
        self.take_lines(false)
    }

    /// The object is fully read: checks the gzip trailer, the last line, the item count and the MD5.
    /// Returns the items of a last line without a newline, and the file's item count.
    pub fn finish(mut self, expect: &Expect) -> Result<(Vec<ExportItem>, u64)> {
        if let Err(e) = self.gz.try_finish() {
            return Err(self.gzip_error(e));
        }
        let tail = self.take_lines(true)?;
        if let Some(n) = expect.items
            && n != self.items
        {
            return Err(Error::fatal(format!(
                "{}: the manifest says {n} items but the file holds {} (after line {})",
                self.url, self.items, self.line
            )));
        }
        if let Some(want) = &expect.md5 {
            let got = STANDARD.encode(self.md5.finalize_reset());
            if &got != want {
                return Err(Error::fatal(format!(
                    "{}: MD5 {got} does not match the manifest's {want} (the object changed or is damaged)",
                    self.url
                )));
            }
        }
        Ok((tail, self.items))
    }

    fn gzip_error(&self, e: std::io::Error) -> Error {
        Error::fatal(format!(
            "{}: corrupt or truncated gzip data in line {}: {e}",
            self.url,
            self.line + 1
        ))
    }

    fn take_lines(&mut self, at_end: bool) -> Result<Vec<ExportItem>> {
        let buf = std::mem::take(self.gz.get_mut());
        let mut out = Vec::new();
        let mut start = 0;
        while let Some(nl) = memchr(b'\n', &buf[start..]) {
            let line = &buf[start..start + nl];
            start += nl + 1;
            self.line += 1;
            out.extend(self.parse(line)?);
        }
        let rest = &buf[start..];
        if at_end && !rest.is_empty() {
            self.line += 1;
            out.extend(self.parse(rest)?);
        } else {
            // Keep the incomplete line (and the allocation) for the next chunk.
            let mut buf = buf;
            buf.drain(..start);
            *self.gz.get_mut() = buf;
        }
        Ok(out)
    }

    fn parse(&mut self, line: &[u8]) -> Result<Option<ExportItem>> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        let (image, key) = parse_line(line, &self.key_names)
            .map_err(|e| Error::fatal(format!("{} line {}: {e}", self.url, self.line)))?;
        self.items += 1;
        Ok(Some(ExportItem {
            line: self.line,
            image,
            key,
        }))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    #[serde(rename = "Item")]
    item: Box<RawValue>,
}

/// One line of a full export, `{"Item":{...}}` in DynamoDB JSON: the item, kept as the line spells
/// it ([`crate::item::raw`]), and its attributes named `key_names`.
pub fn parse_line(line: &[u8], key_names: &[String]) -> std::result::Result<(Image, Item), String> {
    serde_json::from_slice::<Line>(line)
        .ok()
        .and_then(|l| Image::with_keys(l.item.into(), key_names).ok())
        .ok_or_else(|| why_unreadable(line))
}

/// Why a line is unreadable, naming the attribute at fault (slower: only on the error path).
fn why_unreadable(line: &[u8]) -> String {
    match parse_line_slowly(line) {
        Err(e) => e,
        Ok(_) => "not a DynamoDB JSON item".into(),
    }
}

fn parse_line_slowly(line: &[u8]) -> std::result::Result<Item, String> {
    let v: serde_json::Value = serde_json::from_slice(line).map_err(|e| {
        let what = if e.is_eof() { "truncated JSON" } else { "not JSON" };
        format!("{what} ({e})")
    })?;
    let item = v
        .as_object()
        .filter(|o| o.len() == 1)
        .and_then(|o| o.get("Item"))
        .ok_or("expected {\"Item\":{...}} (a full export line)")?;
    json::item_from_json(item)
}

fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|b| *b == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;

    fn gz(text: &str) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::fast());
        e.write_all(text.as_bytes()).unwrap();
        e.finish().unwrap()
    }

    fn md5_of(bytes: &[u8]) -> String {
        STANDARD.encode(Md5::digest(bytes))
    }

    /// Feeds the object in small chunks (lines split across chunks), like an S3 body.
    fn read(bytes: &[u8], expect: &Expect) -> Result<Vec<ExportItem>> {
        let mut r = LineReader::new("s3://b/data/f.json.gz", vec!["pk".to_string()].into());
        let mut all = Vec::new();
        for chunk in bytes.chunks(7) {
            all.extend(r.push(chunk)?);
        }
        let (tail, n) = r.finish(expect)?;
        all.extend(tail);
        assert_eq!(n as usize, all.len());
        Ok(all)
    }

    const GOOD: &str = "{\"Item\":{\"pk\":{\"S\":\"a\"},\"n\":{\"N\":\"1\"}}}\n{\"Item\":{\"pk\":{\"S\":\"b\"},\"b\":{\"B\":\"AAE=\"}}}\n";

    #[test]
    fn reads_lines_across_chunks_and_checks_count_and_md5() {
        let bytes = gz(GOOD);
        let expect = Expect {
            items: Some(2),
            md5: Some(md5_of(&bytes)),
        };
        let items = read(&bytes, &expect).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[1].line, 2);
        let Image::Raw(raw) = &items[1].image else {
            panic!("kept as the line spells it")
        };
        assert_eq!(raw.json(), r#"{"pk":{"S":"b"},"b":{"B":"AAE="}}"#);
        assert_eq!(
            json::item_to_json(&raw.to_item()).to_string(),
            r#"{"b":{"B":"AAE="},"pk":{"S":"b"}}"#
        );
        assert_eq!(json::item_to_json(&items[1].key).to_string(), r#"{"pk":{"S":"b"}}"#);
        // A last line without a newline still counts.
        let bytes = gz(GOOD.trim_end());
        assert_eq!(read(&bytes, &Expect::default()).unwrap().len(), 2);
    }

    #[test]
    fn count_and_md5_mismatches_are_named() {
        let bytes = gz(GOOD);
        let err = read(
            &bytes,
            &Expect {
                items: Some(3),
                md5: None,
            },
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("s3://b/data/f.json.gz: the manifest says 3 items but the file holds 2"),
            "{err}"
        );
        let err = read(
            &bytes,
            &Expect {
                items: Some(2),
                md5: Some(md5_of(b"other")),
            },
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("s3://b/data/f.json.gz: MD5") && err.contains("does not match"),
            "{err}"
        );
    }

    #[test]
    fn bad_lines_name_the_file_and_line() {
        let cases = [
            ("{\"Item\":{\"pk\":{\"S\":\"a\"}}}\nnot json\n", "line 2: not JSON"),
            (
                "{\"Item\":{\"pk\":{\"S\":\"a\"}}}\n{\"Item\":{\"pk\":{\"S\":\"a",
                "line 2: truncated JSON",
            ),
            (
                "{\"Item\":{\"pk\":{\"Q\":\"a\"}}}\n",
                "line 1: pk: unknown type descriptor \"Q\"",
            ),
            ("{\"NewImage\":{}}\n", "line 1: expected {\"Item\":{...}}"),
            (
                "{\"Item\":{\"pk\":{\"S\":\"a\"}},\"Other\":1}\n",
                "line 1: expected {\"Item\":{...}}",
            ),
            (
                "{\"Item\":{\"pk\":{\"S\":\"a\",\"N\":\"1\"}}}\n",
                "line 1: pk: expected an object with one type descriptor",
            ),
        ];
        for (text, want) in cases {
            let err = read(&gz(text), &Expect::default()).unwrap_err().to_string();
            assert!(err.contains(&format!("s3://b/data/f.json.gz {want}")), "{want}: {err}");
        }
    }

    #[test]
    fn corrupt_and_truncated_gzip_are_errors() {
        let mut bytes = gz(&GOOD.repeat(50));
        let cut = bytes.len() / 2;
        let err = read(&bytes[..cut], &Expect::default()).unwrap_err().to_string();
        assert!(
            err.contains("s3://b/data/f.json.gz: corrupt or truncated gzip"),
            "{err}"
        );
        for b in &mut bytes[20..40] {
            *b ^= 0x5a;
        }
        let err = read(&bytes, &Expect::default()).unwrap_err().to_string();
        assert!(err.contains("s3://b/data/f.json.gz"), "{err}");
        let err = read(b"plain text, not gzip\n", &Expect::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("corrupt or truncated gzip data in line 1"), "{err}");
    }
}
