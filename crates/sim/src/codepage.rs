//! Console code pages: how a process's text becomes the bytes a ReceiveResponse carries.
//! WinRS shells run with `WINRS_CODEPAGE` (437, OEM United States, when the client does not
//! say; pywinrm's default) and programs write in it, so the same `echo é` arrives as one
//! byte 0x82 under 437 and as UTF-8 under 65001 (test_winrs_unicode.yml).

/// CP437 bytes 0x80..=0xFF.
const CP437_HIGH: [char; 128] = [
    'Ç', 'ü', 'é', 'â', 'ä', 'à', 'å', 'ç', 'ê', 'ë', 'è', 'ï', 'î', 'ì', 'Ä', 'Å', //
    'É', 'æ', 'Æ', 'ô', 'ö', 'ò', 'û', 'ù', 'ÿ', 'Ö', 'Ü', '¢', '£', '¥', '₧', 'ƒ', //
    'á', 'í', 'ó', 'ú', 'ñ', 'Ñ', 'ª', 'º', '¿', '⌐', '¬', '½', '¼', '¡', '«', '»', //
    '░', '▒', '▓', '│', '┤', '╡', '╢', '╖', '╕', '╣', '║', '╗', '╝', '╜', '╛', '┐', //
    '└', '┴', '┬', '├', '─', '┼', '╞', '╟', '╚', '╔', '╩', '╦', '╠', '═', '╬', '╧', //
    '╨', '╤', '╥', '╙', '╘', '╒', '╓', '╫', '╪', '┘', '┌', '█', '▄', '▌', '▐', '▀', //
    'α', 'ß', 'Γ', 'π', 'Σ', 'σ', 'µ', 'τ', 'Φ', 'Θ', 'Ω', 'δ', '∞', 'φ', 'ε', '∩', //
    '≡', '±', '≥', '≤', '⌠', '⌡', '÷', '≈', '°', '∙', '·', '√', 'ⁿ', '²', '■', '\u{a0}',
];

/// UTF-8.
pub const UTF8: u32 = 65001;
/// OEM United States, the WinRS default.
pub const OEM_US: u32 = 437;

/// Encodes `text` as a console program writing in `codepage` would. Characters the code
/// page lacks become `?`, as WideCharToMultiByte's default character does; code pages other
/// than 437 and 65001 are treated as ASCII-only.
pub fn encode(text: &str, codepage: u32) -> Vec<u8> {
    if codepage == UTF8 {
        return text.as_bytes().to_vec();
    }
    text.chars()
        .map(|c| {
            if c.is_ascii() {
                c as u8
            } else if codepage == OEM_US {
                CP437_HIGH
                    .iter()
                    .position(|&h| h == c)
                    .map_or(b'?', |i| 0x80 + i as u8)
            } else {
                b'?'
            }
        })
        .collect()
}

/// Decodes bytes written in `codepage` (stdin sent by a client, for instance).
pub fn decode(bytes: &[u8], codepage: u32) -> String {
    if codepage == UTF8 {
        return String::from_utf8_lossy(bytes).into_owned();
    }
    bytes
        .iter()
        .map(|&b| {
            if b.is_ascii() {
                b as char
            } else if codepage == OEM_US {
                CP437_HIGH[(b - 0x80) as usize]
            } else {
                '\u{fffd}'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oem_437_and_utf8() {
        assert_eq!(encode("é ü ½", OEM_US), vec![0x82, b' ', 0x81, b' ', 0xAB]);
        assert_eq!(encode("こんにちは", OEM_US), b"?????".to_vec());
        assert_eq!(encode("こんにちは", UTF8), "こんにちは".as_bytes());
        assert_eq!(decode(&[0x82, b'x'], OEM_US), "éx");
        for b in 0x80..=0xFFu8 {
            assert_eq!(encode(&decode(&[b], OEM_US), OEM_US), vec![b]);
        }
    }
}
