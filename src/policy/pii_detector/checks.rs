//! Validators of the built-in detectors: what makes a regex candidate a real value
//! (Luhn, mod-97, SSN area rules, address ranges, decodable tokens). Each has the
//! [`crate::policy::scan::Check`] signature and looks at most one character around the
//! candidate.

use std::net::Ipv6Addr;
use std::ops::Range;

use base64::Engine;

use crate::policy::scan::{char_at, char_before};

type Span = Option<Range<usize>>;

fn text<'a>(hay: &'a str, span: &Range<usize>) -> &'a str {
    hay.get(span.clone()).unwrap_or_default()
}

fn digits(s: &str) -> Vec<u8> {
    s.bytes()
        .filter(u8::is_ascii_digit)
        .map(|b| b - b'0')
        .collect()
}

/// The Luhn checksum over decimal digits.
pub fn luhn(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, d) in digits.iter().rev().enumerate() {
        let mut d = u32::from(*d);
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    !digits.is_empty() && sum % 10 == 0
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// Not glued to other word characters on either side.
fn standalone(hay: &str, span: &Range<usize>, joins: fn(char) -> bool) -> bool {
    !char_before(hay, span.start).is_some_and(joins) && !char_at(hay, span.end).is_some_and(joins)
}

pub fn email(hay: &str, span: Range<usize>) -> Span {
    let t = text(hay, &span);
    let (local, domain) = t.split_once('@')?;
    let ok_local = !local.ends_with('.') && !local.starts_with('.') && !local.contains("..");
    let ok_domain = domain
        .split('.')
        .all(|l| !l.is_empty() && !l.starts_with('-') && !l.ends_with('-'));
    // Starting after a local-part character means the real local part was rejected.
    let mid_local = char_before(hay, span.start).is_some_and(|c| "._%+-".contains(c));
    (ok_local && ok_domain && !mid_local).then_some(span)
}

/// `+44 20 7946 0958`, `0044…`: 8 to 15 digits after the international prefix.
pub fn phone_international(hay: &str, span: Range<usize>) -> Span {
    let t = text(hay, &span);
    let body = t.strip_prefix('+').or_else(|| t.strip_prefix("00"))?;
    let n = digits(body).len();
    let opens = t.matches('(').count();
    let balanced = opens == t.matches(')').count() && opens <= 1;
    let glued = |c: char| c.is_ascii_alphanumeric() || c == '+';
    ((8..=15).contains(&n) && balanced && standalone(hay, &span, glued)).then_some(span)
}

/// North American numbers: area code and exchange may not be `N11` service codes.
pub fn phone_nanp(hay: &str, span: Range<usize>) -> Span {
    let d = digits(text(hay, &span));
    let d = match d.len() {
        11 if d.first() == Some(&1) => d.get(1..)?.to_vec(),
        10 => d,
        _ => return None,
    };
    let n11 = |x: &[u8]| x.get(1) == Some(&1) && x.get(2) == Some(&1);
    let ok = !n11(d.get(0..3)?) && !n11(d.get(3..6)?);
    let glued = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '.';
    (ok && standalone(hay, &span, glued)).then_some(span)
}

/// US SSN: area not 000, 666 or 9xx; group not 00; serial not 0000; not a number the SSA
/// voided after it was published.
pub fn us_ssn(hay: &str, span: Range<usize>) -> Span {
    let d = digits(text(hay, &span));
    if d.len() != 9 {
        return None;
    }
    let num = |r: Range<usize>| {
        d.get(r)
            .map(|x| x.iter().fold(0u32, |a, b| a * 10 + u32::from(*b)))
    };
    let (area, group, serial) = (num(0..3)?, num(3..5)?, num(5..9)?);
    let all = num(0..9)?;
    let ok = area != 0
        && area != 666
        && area < 900
        && group != 0
        && serial != 0
        && all != 78_051_120
        && all != 219_099_999;
    let glued = |c: char| c.is_ascii_alphanumeric() || c == '-';
    (ok && standalone(hay, &span, glued)).then_some(span)
}

/// Card brands by prefix range and length: (low, high, prefix digits, min len, max len).
const BRANDS: &[(u32, u32, usize, usize, usize)] = &[
    (4, 4, 1, 13, 19),             // Visa (13, 16, 19 in use)
    (51, 55, 2, 16, 16),           // Mastercard
    (2221, 2720, 4, 16, 16),       // Mastercard 2-series
    (34, 34, 2, 15, 15),           // American Express
    (37, 37, 2, 15, 15),           // American Express
    (6011, 6011, 4, 16, 19),       // Discover
    (644, 649, 3, 16, 19),         // Discover
    (65, 65, 2, 16, 19),           // Discover
    (622_126, 622_925, 6, 16, 19), // Discover co-branded UnionPay
    (62, 62, 2, 16, 19),           // UnionPay
    (3528, 3589, 4, 16, 19),       // JCB
    (300, 305, 3, 14, 19),         // Diners Club
    (3095, 3095, 4, 14, 19),       // Diners Club
    (36, 36, 2, 14, 19),           // Diners Club
    (38, 39, 2, 14, 19),           // Diners Club
    (50, 50, 2, 12, 19),           // Maestro
    (56, 58, 2, 12, 19),           // Maestro
    (67, 67, 2, 12, 19),           // Maestro
];

fn brand_matches(d: &[u8]) -> bool {
    BRANDS.iter().any(|&(lo, hi, plen, min, max)| {
        let prefix = d
            .get(..plen)
            .map(|p| p.iter().fold(0u32, |a, b| a * 10 + u32::from(*b)));
        prefix.is_some_and(|p| (lo..=hi).contains(&p)) && (min..=max).contains(&d.len())
    })
}

/// Separators, if any, are all the same character (`4111 1111 …` or `4111-1111-…`).
fn consistent_separators(t: &str) -> bool {
    let mut seps = t.chars().filter(|c| !c.is_ascii_digit());
    match seps.next() {
        None => true,
        Some(first) => seps.all(|c| c == first),
    }
}

fn card(hay: &str, span: Range<usize>, any_brand: bool) -> Span {
    let t = text(hay, &span);
    let d = digits(t);
    let glued = |c: char| c.is_ascii_alphanumeric() || c == '-';
    let ok = (13..=19).contains(&d.len())
        && consistent_separators(t)
        && luhn(&d)
        && (any_brand || brand_matches(&d))
        && standalone(hay, &span, glued);
    ok.then_some(span)
}

/// A payment card number of a known brand (prefix and length) with a valid Luhn digit.
pub fn card_branded(hay: &str, span: Range<usize>) -> Span {
    card(hay, span, false)
}

/// `pci_mode`: any 13–19 digit number with a valid Luhn digit.
pub fn card_any(hay: &str, span: Range<usize>) -> Span {
    card(hay, span, true)
}

/// IBAN lengths by country (ISO 13616 registry).
const IBAN_LENGTHS: &[(&str, usize)] = &[
    ("AD", 24),
    ("AE", 23),
    ("AL", 28),
    ("AT", 20),
    ("AZ", 28),
    ("BA", 20),
    ("BE", 16),
    ("BG", 22),
    ("BH", 22),
    ("BR", 29),
    ("BY", 28),
    ("CH", 21),
    ("CR", 22),
    ("CY", 28),
    ("CZ", 24),
    ("DE", 22),
    ("DK", 18),
    ("DO", 28),
    ("EE", 20),
    ("EG", 29),
    ("ES", 24),
    ("FI", 18),
    ("FO", 18),
    ("FR", 27),
    ("GB", 22),
    ("GE", 22),
    ("GI", 23),
    ("GL", 18),
    ("GR", 27),
    ("GT", 28),
    ("HR", 21),
    ("HU", 28),
    ("IE", 22),
    ("IL", 23),
    ("IQ", 23),
    ("IS", 26),
    ("IT", 27),
    ("JO", 30),
    ("KW", 30),
    ("KZ", 20),
    ("LB", 28),
    ("LC", 32),
    ("LI", 21),
    ("LT", 20),
    ("LU", 20),
    ("LV", 21),
    ("MC", 27),
    ("MD", 24),
    ("ME", 22),
    ("MK", 19),
    ("MR", 27),
    ("MT", 31),
    ("MU", 30),
    ("NL", 18),
    ("NO", 15),
    ("PK", 24),
    ("PL", 28),
    ("PS", 29),
    ("PT", 25),
    ("QA", 29),
    ("RO", 24),
    ("RS", 22),
    ("SA", 24),
    ("SC", 31),
    ("SE", 24),
    ("SI", 19),
    ("SK", 24),
    ("SM", 27),
    ("ST", 25),
    ("SV", 28),
    ("TL", 23),
    ("TN", 24),
    ("TR", 26),
    ("UA", 29),
    ("VA", 22),
    ("VG", 24),
    ("XK", 20),
];

/// ISO 7064 mod 97-10 over an IBAN (country and check digits moved to the end).
pub fn iban_mod97(iban: &str) -> bool {
    let (head, tail) = (iban.get(..4), iban.get(4..));
    let (Some(head), Some(tail)) = (head, tail) else {
        return false;
    };
    let mut rem = 0u32;
    for c in tail.chars().chain(head.chars()) {
        let v = match c.to_digit(36) {
            Some(v) => v,
            None => return false,
        };
        rem = if v < 10 {
            (rem * 10 + v) % 97
        } else {
            (rem * 100 + v) % 97
        };
    }
    rem == 1
}

/// An IBAN: known country, that country's length, mod-97. The regex may run on into the
/// next word (`… 0130 00 is`), so the value is cut at the country's length, which must
/// fall on a group boundary.
pub fn iban(hay: &str, span: Range<usize>) -> Span {
    let t = text(hay, &span);
    let country = t.get(..2)?.to_ascii_uppercase();
    let len = IBAN_LENGTHS
        .iter()
        .find(|(c, _)| *c == country)
        .map(|(_, l)| *l)?;
    let mut alnum = 0;
    let mut end = None;
    for (i, c) in t.char_indices() {
        if c.is_ascii_alphanumeric() {
            alnum += 1;
            if alnum == len {
                end = Some(i + c.len_utf8());
                break;
            }
        }
    }
    let end = end?;
    let rest = t.get(end..)?;
    if !(rest.is_empty() || rest.starts_with(' ')) {
        return None;
    }
    let compact: String = t
        .get(..end)?
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if char_before(hay, span.start).is_some_and(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    iban_mod97(&compact).then_some(span.start..span.start + end)
}

/// IPv4 with every octet in 0–255 written without leading zeros; not the unspecified or
/// broadcast address; not a piece of a longer dotted number.
pub fn ipv4(hay: &str, span: Range<usize>) -> Span {
    let t = text(hay, &span);
    let mut octets = Vec::with_capacity(4);
    for part in t.split('.') {
        if part.is_empty() || (part.len() > 1 && part.starts_with('0')) {
            return None;
        }
        octets.push(part.parse::<u8>().ok()?);
    }
    let ok = octets.len() == 4
        && octets != [0, 0, 0, 0]
        && octets != [255, 255, 255, 255]
        && char_before(hay, span.start) != Some('.');
    ok.then_some(span)
}

/// IPv6 (any form `std` parses, with embedded IPv4), not `::` or `::1`. The regex grabs a
/// run of address characters; a trailing full stop ends a sentence, not an address.
pub fn ipv6(hay: &str, span: Range<usize>) -> Span {
    let glued = |c: char| c.is_ascii_alphanumeric() || c == ':' || c == '_';
    if char_before(hay, span.start).is_some_and(|c| glued(c) || c == '.')
        || char_at(hay, span.end).is_some_and(glued)
    {
        return None;
    }
    let t = text(hay, &span).trim_end_matches('.');
    let addr: Ipv6Addr = t.parse().ok()?;
    if addr.is_unspecified() || addr.is_loopback() || t.matches(':').count() < 2 {
        return None;
    }
    Some(span.start..span.start + t.len())
}

/// A provider key: a whole token (not glued to more key characters).
pub fn token(hay: &str, span: Range<usize>) -> Span {
    standalone(hay, &span, is_token_char).then_some(span)
}

/// OpenAI keys: a whole `sk-…` token that is not an Anthropic key and looks random
/// (letters and digits).
pub fn openai_key(hay: &str, span: Range<usize>) -> Span {
    let t = text(hay, &span);
    let body = t.get(3..).unwrap_or_default();
    let random =
        body.bytes().any(|b| b.is_ascii_digit()) && body.bytes().any(|b| b.is_ascii_alphabetic());
    (!t.starts_with("sk-ant-") && random && standalone(hay, &span, is_token_char)).then_some(span)
}

/// An AWS secret access key after its name: exactly 40 key characters.
pub fn aws_secret(hay: &str, span: Range<usize>) -> Span {
    let joins = |c: char| c.is_ascii_alphanumeric() || c == '/' || c == '+' || c == '=';
    (!char_at(hay, span.end).is_some_and(joins)).then_some(span)
}

/// A JWT: its header decodes to a JSON object naming an `alg`.
pub fn jwt(hay: &str, span: Range<usize>) -> Span {
    let t = text(hay, &span);
    let header = t.split('.').next()?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header.trim_end_matches('='))
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    (v.get("alg").is_some() && standalone(hay, &span, is_token_char)).then_some(span)
}

/// NPI: 10 digits whose Luhn check runs over the `80840` health-industry prefix.
pub fn npi(hay: &str, span: Range<usize>) -> Span {
    let d = digits(text(hay, &span));
    let mut full = vec![8, 0, 8, 4, 0];
    full.extend_from_slice(&d);
    (d.len() == 10 && luhn(&full)).then_some(span)
}

/// An identifier named by its label (`MRN:`, `Member ID:`): it must hold digits.
pub fn labelled_id(hay: &str, span: Range<usize>) -> Span {
    let n = digits(text(hay, &span)).len();
    (n >= 4).then_some(span)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(check: fn(&str, Range<usize>) -> Span, s: &str) -> bool {
        check(s, 0..s.len()).is_some()
    }

    #[test]
    fn luhn_and_brands() {
        assert!(ok(card_branded, "4111 1111 1111 1111"));
        assert!(ok(card_branded, "5500-0000-0000-0004"));
        assert!(ok(card_branded, "378282246310005"));
        assert!(!ok(card_branded, "4111 1111 1111 1112"), "bad check digit");
        assert!(!ok(card_branded, "4111-1111 1111-1111"), "mixed separators");
        // Luhn-valid but no brand starts with 9: only pci_mode takes it.
        assert!(!ok(card_branded, "9000000000000001"));
        assert!(ok(card_any, "9000000000000001"));
    }

    #[test]
    fn iban_is_cut_at_the_country_length() {
        let s = "DE89 3704 0044 0532 0130 00 is mine";
        let span = iban(s, 0..s.len()).unwrap();
        assert_eq!(&s[span], "DE89 3704 0044 0532 0130 00");
        assert!(ok(iban, "GB82WEST12345698765432"));
        assert!(!ok(iban, "GB82WEST12345698765433"), "mod-97");
        assert!(!ok(iban, "ZZ82WEST12345698765432"), "unknown country");
    }

    #[test]
    fn ssn_area_rules() {
        assert!(ok(us_ssn, "123-45-6789"));
        assert!(!ok(us_ssn, "000-12-3456"));
        assert!(!ok(us_ssn, "666-12-3456"));
        assert!(!ok(us_ssn, "912-12-3456"));
        assert!(!ok(us_ssn, "123-00-3456"));
        assert!(!ok(us_ssn, "123-45-0000"));
        assert!(!ok(us_ssn, "078-05-1120"));
    }

    #[test]
    fn addresses() {
        assert!(ok(ipv4, "192.168.1.20"));
        assert!(!ok(ipv4, "256.1.1.1"));
        assert!(!ok(ipv4, "01.2.3.4"));
        assert!(!ok(ipv4, "0.0.0.0"));
        assert!(ok(ipv6, "2001:db8::8a2e:370:7334"));
        assert!(ok(ipv6, "::ffff:192.0.2.1"));
        assert!(!ok(ipv6, "::1"));
        assert!(!ok(ipv6, "12:30:45"));
        let s = "at fe80::1ff:fe23:4567:890a.";
        assert_eq!(ipv6(s, 3..s.len()), Some(3..s.len() - 1));
    }

    #[test]
    fn health_identifiers() {
        assert!(ok(npi, "1234567893"));
        assert!(!ok(npi, "1234567890"));
        assert!(ok(labelled_id, "A1234567"));
        assert!(!ok(labelled_id, "ABC12"));
    }

    #[test]
    fn tokens() {
        assert!(ok(
            jwt,
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlMTIz"
        ));
        assert!(!ok(
            jwt,
            "eyJub3RqdXN0Ijp0cnVlfQ.eyJzdWIiOiIxIn0.c2lnbmF0dXJlMTIz"
        ));
        assert!(ok(openai_key, "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8t"));
        assert!(!ok(openai_key, "sk-ant-api03-Ab3dEf6hIj9kLm2nOp5qRs8t"));
        assert!(!ok(openai_key, "sk-this-is-just-a-long-phrase"));
    }
}
