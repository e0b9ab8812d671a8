//! Letter tables for normalisation: styled letters (mathematical, circled, squared, small
//! capitals), Latin letters with diacritics, and Cyrillic/Greek letters that look Latin.
//! Each maps one character to its ASCII look-alike, or `None`.

/// Mathematical alphanumerics (𝐢𝐠𝐧𝐨𝐫𝐞), circled (ⓘ), parenthesized, squared and
/// small-capital letters.
pub fn styled_letter(c: char) -> Option<char> {
    let u = u32::from(c);
    let from = |base: u32, first: u8| char::from_u32(u32::from(first) + (u - base));
    match u {
        0x1D400..=0x1D6A3 => {
            let off = (u - 0x1D400) % 52;
            char::from_u32(if off < 26 {
                u32::from(b'A') + off
            } else {
                u32::from(b'a') + off - 26
            })
        }
        0x1D7CE..=0x1D7FF => char::from_u32(u32::from(b'0') + (u - 0x1D7CE) % 10),
        0x24B6..=0x24CF => from(0x24B6, b'A'),
        0x24D0..=0x24E9 => from(0x24D0, b'a'),
        0x249C..=0x24B5 => from(0x249C, b'a'),
        0x1F130..=0x1F149 => from(0x1F130, b'A'),
        0x1F150..=0x1F169 => from(0x1F150, b'A'),
        0x1F170..=0x1F189 => from(0x1F170, b'A'),
        _ => match c {
            'ᴀ' => Some('a'),
            'ʙ' => Some('b'),
            'ᴄ' => Some('c'),
            'ᴅ' => Some('d'),
            'ᴇ' => Some('e'),
            'ɢ' => Some('g'),
            'ʜ' => Some('h'),
            'ɪ' => Some('i'),
            'ᴊ' => Some('j'),
            'ᴋ' => Some('k'),
            'ʟ' => Some('l'),
            'ᴍ' => Some('m'),
            'ɴ' => Some('n'),
            'ᴏ' => Some('o'),
            'ᴘ' => Some('p'),
            'ʀ' => Some('r'),
            'ꜱ' => Some('s'),
            'ᴛ' => Some('t'),
            'ᴜ' => Some('u'),
            'ᴠ' => Some('v'),
            'ᴡ' => Some('w'),
            'ʏ' => Some('y'),
            'ᴢ' => Some('z'),
            'ı' | 'ɩ' | 'ⅰ' => Some('i'),
            'ɑ' => Some('a'),
            'ɡ' => Some('g'),
            'ℓ' => Some('l'),
            'ℎ' => Some('h'),
            'ℯ' | '℮' => Some('e'),
            'ℴ' => Some('o'),
            'ſ' => Some('s'),
            _ => None,
        },
    }
}

/// Latin-1 and Latin Extended-A letters with diacritics, to their base letter.
pub fn accented(c: char) -> Option<char> {
    let base = match c {
        'À'..='Å' => 'A',
        'Ç' => 'C',
        'È'..='Ë' => 'E',
        'Ì'..='Ï' => 'I',
        'Ð' => 'D',
        'Ñ' => 'N',
        'Ò'..='Ö' | 'Ø' => 'O',
        'Ù'..='Ü' => 'U',
        'Ý' => 'Y',
        'à'..='å' => 'a',
        'ç' => 'c',
        'è'..='ë' => 'e',
        'ì'..='ï' => 'i',
        'ð' => 'd',
        'ñ' => 'n',
        'ò'..='ö' | 'ø' => 'o',
        'ù'..='ü' => 'u',
        'ý' | 'ÿ' => 'y',
        'ß' | 'æ' | 'Æ' | 'œ' | 'Œ' => 'x', // expanded by push_folded
        '\u{0100}'..='\u{017F}' => return latin_ext_a(c),
        'ș' => 's',
        'Ș' => 'S',
        'ț' => 't',
        'Ț' => 'T',
        _ => return None,
    };
    Some(base)
}

fn latin_ext_a(c: char) -> Option<char> {
    let u = u32::from(c);
    let base = match u {
        0x0100..=0x0105 => 'a',
        0x0106..=0x010D => 'c',
        0x010E..=0x0111 => 'd',
        0x0112..=0x011B => 'e',
        0x011C..=0x0123 => 'g',
        0x0124..=0x0127 => 'h',
        0x0128..=0x0131 => 'i',
        0x0134..=0x0135 => 'j',
        0x0136..=0x0138 => 'k',
        0x0139..=0x0142 => 'l',
        0x0143..=0x014B => 'n',
        0x014C..=0x0151 => 'o',
        0x0154..=0x0159 => 'r',
        0x015A..=0x0161 => 's',
        0x0162..=0x0167 => 't',
        0x0168..=0x0173 => 'u',
        0x0174..=0x0175 => 'w',
        0x0176..=0x0178 => 'y',
        0x0179..=0x017E => 'z',
        0x017F => 's',
        _ => return None,
    };
    Some(base)
}

/// Cyrillic and Greek letters that look like Latin ones.
pub fn confusable(c: char) -> Option<char> {
    Some(match c {
        'а' | 'α' => 'a',
        'в' | 'β' => 'b',
        'с' | 'ϲ' => 'c',
        'ԁ' => 'd',
        'е' | 'ё' | 'ε' => 'e',
        'һ' => 'h',
        'і' | 'ї' | 'ι' => 'i',
        'ј' => 'j',
        'к' | 'κ' => 'k',
        'ӏ' => 'l',
        'м' => 'm',
        'п' | 'η' => 'n',
        'о' | 'ο' | 'σ' => 'o',
        'р' | 'ρ' => 'p',
        'ԛ' => 'q',
        'г' => 'r',
        'ѕ' => 's',
        'т' | 'τ' => 't',
        'υ' => 'u',
        'ν' => 'v',
        'ԝ' | 'ω' => 'w',
        'х' | 'χ' => 'x',
        'у' | 'γ' => 'y',
        'А' | 'Α' => 'A',
        'В' | 'Β' => 'B',
        'С' | 'Ϲ' => 'C',
        'Е' | 'Ε' => 'E',
        'Н' | 'Η' => 'H',
        'І' | 'Ι' => 'I',
        'Ј' => 'J',
        'К' | 'Κ' => 'K',
        'М' | 'Μ' => 'M',
        'Ν' => 'N',
        'О' | 'Ο' => 'O',
        'Р' | 'Ρ' => 'P',
        'Ѕ' => 'S',
        'Т' | 'Τ' => 'T',
        'Х' | 'Χ' => 'X',
        'У' | 'Υ' => 'Y',
        'Ζ' => 'Z',
        _ => return None,
    })
}
