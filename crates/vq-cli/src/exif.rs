//! The generation parameters as EXIF, for the formats without text chunks (JPEG, WebP): a TIFF
//! structure whose Exif IFD holds one `UserComment` (tag 0x9286) with the parameters as a JSON
//! object, in ASCII (non-ASCII characters as `\uXXXX` escapes), and IFD0 the `Software` tag.
//! `exiftool -UserComment FILE` shows it; web UIs keep their parameters in the same tag.

/// TIFF field types (TIFF 6.0, section 2).
const ASCII: u16 = 2;
const LONG: u16 = 4;
const UNDEFINED: u16 = 7;

/// Tags: IFD0's `Software` and pointer to the Exif IFD, the Exif IFD's `UserComment`.
const SOFTWARE: u16 = 0x0131;
const EXIF_IFD: u16 = 0x8769;
const USER_COMMENT: u16 = 0x9286;

/// The character-code prefix of a `UserComment` (Exif 2.3, table 9).
const ASCII_CODE: &[u8; 8] = b"ASCII\0\0\0";

/// The parameters `(key, value)` as a JSON object whose text is pure ASCII.
pub fn ascii_json(pairs: &[(&str, String)]) -> String {
    let fields: Vec<String> =
        pairs.iter().map(|(key, value)| format!("{}:{}", json_string(key), json_string(value))).collect();
    format!("{{{}}}", fields.join(","))
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    // serde_json escapes quotes, backslashes and control characters; the rest of non-ASCII
    // becomes \uXXXX (UTF-16 code units, surrogate pairs above the BMP), still valid JSON.
    for c in serde_json::Value::from(s).to_string().chars() {
        match c.is_ascii() {
            true => out.push(c),
            false => {
                for unit in c.encode_utf16(&mut [0; 2]) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out
}

/// A little-endian TIFF structure with `software` in IFD0 and `comment` (ASCII) as the Exif
/// IFD's `UserComment`; what `ImageEncoder::set_exif_metadata` takes.
pub fn exif(software: &str, comment: &str) -> Vec<u8> {
    // Layout: header (8) | IFD0: 2 entries (30) | Software text | Exif IFD: 1 entry (18) | comment.
    let software = [software.as_bytes(), b"\0"].concat();
    let software_at = 8 + 30;
    let exif_ifd_at = even(software_at + software.len());
    let comment_at = exif_ifd_at + 18;
    let comment = [ASCII_CODE.as_slice(), comment.as_bytes()].concat();

    let mut tiff = Vec::with_capacity(comment_at + comment.len());
    tiff.extend(b"II");
    push16(&mut tiff, 42);
    push32(&mut tiff, 8);
    push16(&mut tiff, 2);
    entry(&mut tiff, SOFTWARE, ASCII, software.len(), software_at);
    entry(&mut tiff, EXIF_IFD, LONG, 1, exif_ifd_at);
    push32(&mut tiff, 0);
    tiff.extend(&software);
    tiff.resize(exif_ifd_at, 0);
    push16(&mut tiff, 1);
    entry(&mut tiff, USER_COMMENT, UNDEFINED, comment.len(), comment_at);
    push32(&mut tiff, 0);
    tiff.extend(&comment);
    tiff
}

/// An IFD entry whose value lies at `offset` (every value here is longer than 4 bytes, except
/// the Exif IFD pointer, a LONG whose value is the offset itself).
fn entry(tiff: &mut Vec<u8>, tag: u16, kind: u16, count: usize, offset: usize) {
    push16(tiff, tag);
    push16(tiff, kind);
    push32(tiff, count);
    push32(tiff, offset);
}

fn push16(tiff: &mut Vec<u8>, value: u16) {
    tiff.extend(value.to_le_bytes());
}

/// TIFF offsets and counts are 32-bit; the callers' sizes are far below 4 GiB (the JPEG
/// segment limit of 64 KiB is checked before this is written).
fn push32(tiff: &mut Vec<u8>, value: usize) {
    tiff.extend(u32::try_from(value).unwrap_or(u32::MAX).to_le_bytes());
}

/// TIFF values start on even offsets.
fn even(offset: usize) -> usize {
    offset + offset % 2
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u16_at(b: &[u8], at: usize) -> u16 {
        u16::from_le_bytes([b[at], b[at + 1]])
    }

    fn u32_at(b: &[u8], at: usize) -> usize {
        u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]) as usize
    }

    #[test]
    fn the_json_is_ascii_and_decodes_to_the_same_text() {
        let pairs = [("prompt", "ein Bär \"im\" Pool 🐻\n".to_string()), ("seed", "7".to_string())];
        let json = ascii_json(&pairs);
        assert!(json.is_ascii(), "{json}");
        let back: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(back["prompt"], "ein Bär \"im\" Pool 🐻\n");
        assert_eq!(back["seed"], "7");
        assert!(json.starts_with("{\"prompt\":"), "keys keep their order: {json}");
    }

    #[test]
    fn the_tiff_structure_points_at_its_values() {
        let tiff = exif("vq-diffusion 0.1.0", "{\"a\":\"b\"}");
        assert_eq!(&tiff[..4], b"II*\0");
        let ifd0 = u32_at(&tiff, 4);
        assert_eq!(u16_at(&tiff, ifd0), 2);
        // Software: ASCII, NUL-terminated.
        assert_eq!((u16_at(&tiff, ifd0 + 2), u16_at(&tiff, ifd0 + 4)), (SOFTWARE, ASCII));
        let (count, at) = (u32_at(&tiff, ifd0 + 6), u32_at(&tiff, ifd0 + 10));
        assert_eq!(&tiff[at..at + count], b"vq-diffusion 0.1.0\0");
        // The Exif IFD, on an even offset, with the comment.
        assert_eq!(u16_at(&tiff, ifd0 + 14), EXIF_IFD);
        let exif_ifd = u32_at(&tiff, ifd0 + 22);
        assert_eq!(exif_ifd % 2, 0);
        assert_eq!(u32_at(&tiff, ifd0 + 26), 0, "no next IFD");
        assert_eq!((u16_at(&tiff, exif_ifd), u16_at(&tiff, exif_ifd + 2)), (1, USER_COMMENT));
        let (count, at) = (u32_at(&tiff, exif_ifd + 6), u32_at(&tiff, exif_ifd + 10));
        assert_eq!(&tiff[at..at + count], b"ASCII\0\0\0{\"a\":\"b\"}");
        assert_eq!(at + count, tiff.len());
    }
}
