//! Encoding of path parameters.
//!
//! An id goes into one path segment (`/activity_logs/{activity_id}`), and must stay there whatever
//! it holds. progenitor's own encoder leaves `\` alone, which URL parsers read as `/` for `http(s)`
//! (`a\..\victim` became `/victim`); this one percent-encodes every byte except the unreserved
//! characters of RFC 3986 (`A-Z a-z 0-9 - . _ ~`). A value made only of dots, or an empty one, is
//! still not a segment of its own: the request hook refuses those before anything is sent.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Every byte but RFC 3986's unreserved characters.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes `value` for use as one path segment.
///
/// ```
/// use lago_audit_client::path::encode_segment;
///
/// assert_eq!(encode_segment("req-1/2"), "req-1%2F2");
/// assert_eq!(encode_segment(r"a\..\b"), "a%5C..%5Cb");
/// assert_eq!(encode_segment("%2e%2e"), "%252e%252e");
/// ```
pub fn encode_segment(value: &str) -> String {
    utf8_percent_encode(value, SEGMENT).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unreserved_characters_stay_as_they_are() {
        assert_eq!(encode_segment("AZaz09-._~"), "AZaz09-._~");
        assert_eq!(encode_segment("a?b#c d"), "a%3Fb%23c%20d");
        assert_eq!(encode_segment("é"), "%C3%A9");
        assert_eq!(encode_segment(""), "");
        for byte in 0u8..=127 {
            let c = char::from(byte);
            let encoded = encode_segment(&c.to_string());
            if c.is_ascii_alphanumeric() || "-._~".contains(c) {
                assert_eq!(encoded, c.to_string());
            } else {
                assert_eq!(encoded, format!("%{byte:02X}"));
            }
        }
    }
}
