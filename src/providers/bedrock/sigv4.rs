//! AWS Signature Version 4 for request headers (what botocore's `SigV4Auth` does), with
//! `sha2` + `hmac`. Pure: the clock comes in as an argument.
//!
//! The canonical URI encodes the (already URI-encoded) path once more, as every service but
//! S3 expects: the wire path `/model/a%3Ab/converse` is signed as `/model/a%253Ab/converse`.

use std::time::SystemTime;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::providers::native::hex;

type HmacSha256 = Hmac<Sha256>;

/// The credentials a request is signed with.
#[derive(Clone, Copy)]
pub struct Credentials<'a> {
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    pub session_token: Option<&'a str>,
}

/// Where the signature is valid: region and signing name (`bedrock` for Bedrock Runtime).
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub region: &'a str,
    pub service: &'a str,
}

/// A URL kt cannot sign.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot sign the URL `{0}`: expected `http(s)://host/path`")]
pub struct UrlError(pub String);

/// Signs a request and returns the headers to add: `X-Amz-Date`, `X-Amz-Security-Token`
/// (session credentials only) and `Authorization`. `headers` are the headers to sign
/// besides `host` and those three; send them unchanged, with `body` byte for byte.
pub fn sign(
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: &[u8],
    creds: Credentials<'_>,
    scope: Scope<'_>,
    now: SystemTime,
) -> Result<Vec<(String, String)>, UrlError> {
    let (host, path, query) = split_url(url).ok_or_else(|| UrlError(url.to_string()))?;
    let amz_date = amz_date(now);
    let date = amz_date.get(..8).unwrap_or_default();

    let mut added = vec![("X-Amz-Date".to_string(), amz_date.clone())];
    if let Some(token) = creds.session_token {
        added.push(("X-Amz-Security-Token".to_string(), token.to_string()));
    }

    let mut signed: Vec<(String, String)> = Vec::with_capacity(headers.len() + 3);
    signed.push(("host".to_string(), host.to_string()));
    for (k, v) in headers.iter().chain(added.iter()) {
        let name = k.to_ascii_lowercase();
        let value = collapse_spaces(v);
        match signed.iter_mut().find(|(n, _)| *n == name) {
            Some((_, existing)) => {
                existing.push(',');
                existing.push_str(&value);
            }
            None => signed.push((name, value)),
        }
    }
    signed.sort_by(|a, b| a.0.cmp(&b.0));
    let signed_names = signed
        .iter()
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let canonical_headers: String = signed.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();

    let canonical_request = format!(
        "{method}\n{}\n{}\n{canonical_headers}\n{signed_names}\n{}",
        canonical_uri(path),
        canonical_query(query),
        hex(&Sha256::digest(body))
    );
    let credential_scope = format!("{date}/{}/{}/aws4_request", scope.region, scope.service);
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{credential_scope}\n{}",
        hex(&Sha256::digest(canonical_request.as_bytes()))
    );
    let key = signing_key(creds.secret_access_key, date, scope.region, scope.service);
    let signature = hex(&hmac(&key, string_to_sign.as_bytes()));
    added.push((
        "Authorization".to_string(),
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{credential_scope}, SignedHeaders={signed_names}, Signature={signature}",
            creds.access_key_id
        ),
    ));
    Ok(added)
}

/// `kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")`.
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> Vec<u8> {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    hmac(&k_service, b"aws4_request")
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    match HmacSha256::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

/// `(host[:port], path, query)` of an absolute URL, without decoding anything.
fn split_url(url: &str) -> Option<(&str, &str, &str)> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let rest = rest.split('#').next().unwrap_or_default();
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path_query) = rest.split_at(authority_end);
    let host = authority.rsplit('@').next().unwrap_or_default();
    if host.is_empty() {
        return None;
    }
    let (path, query) = path_query.split_once('?').unwrap_or((path_query, ""));
    Some((host, path, query))
}

/// `YYYYMMDDTHHMMSSZ` in UTC.
pub fn amz_date(now: SystemTime) -> String {
    let secs = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let (y, m, d) = crate::civil::from_days(days);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Header values are trimmed and inner runs of spaces collapse to one.
fn collapse_spaces(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// RFC 3986 encoding of everything but the unreserved characters.
pub fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn canonical_uri(path: &str) -> String {
    if path.is_empty() {
        return "/".to_string();
    }
    uri_encode(path, true)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex_pair = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b, hex_pair) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                uri_encode(&percent_decode(k), false),
                uri_encode(&percent_decode(v), false),
            )
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// 2015-08-30T12:36:00Z, the time of AWS's published examples.
    fn example_time() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_440_938_160)
    }

    const EXAMPLE: Credentials<'static> = Credentials {
        access_key_id: "AKIDEXAMPLE",
        secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        session_token: None,
    };

    fn authorization(added: &[(String, String)]) -> &str {
        &added.iter().find(|(k, _)| k == "Authorization").unwrap().1
    }

    #[test]
    fn dates() {
        assert_eq!(amz_date(example_time()), "20150830T123600Z");
        assert_eq!(amz_date(SystemTime::UNIX_EPOCH), "19700101T000000Z");
        // A leap day.
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_709_208_000);
        assert_eq!(amz_date(t), "20240229T120000Z");
    }

    /// The signature-v4 test suite's vectors (`get-vanilla`, `post-vanilla`,
    /// `get-vanilla-query-order-key-case`): service `service`, region `us-east-1`, the
    /// example credentials, no headers but `host` and `x-amz-date`.
    #[test]
    fn aws_test_suite_vectors() {
        let scope = Scope {
            region: "us-east-1",
            service: "service",
        };
        for (method, url, signature) in [
            (
                "GET",
                "https://example.amazonaws.com/",
                "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
            ),
            (
                "POST",
                "https://example.amazonaws.com/",
                "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
            ),
            (
                "GET",
                "https://example.amazonaws.com/?Param2=value2&Param1=value1",
                "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
            ),
        ] {
            let added = sign(method, url, &[], b"", EXAMPLE, scope, example_time()).unwrap();
            assert_eq!(
                authorization(&added),
                format!("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature={signature}"),
                "{method} {url}"
            );
        }
    }

    /// The IAM `ListUsers` example of AWS's "signature version 4 signing process" guide:
    /// its derived key for 20150830/us-east-1/iam and its final signature.
    #[test]
    fn aws_guide_iam_example() {
        assert_eq!(
            hex(&signing_key(
                EXAMPLE.secret_access_key,
                "20150830",
                "us-east-1",
                "iam"
            )),
            "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"
        );
        let headers = vec![(
            "Content-Type".to_string(),
            "application/x-www-form-urlencoded; charset=utf-8".to_string(),
        )];
        let added = sign(
            "GET",
            "https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08",
            &headers,
            b"",
            EXAMPLE,
            Scope {
                region: "us-east-1",
                service: "iam",
            },
            example_time(),
        )
        .unwrap();
        assert_eq!(
            authorization(&added),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
        );
    }

    #[test]
    fn canonical_forms() {
        assert_eq!(
            canonical_uri("/model/us.anthropic.claude-3-7-sonnet-20250219-v1%3A0/converse"),
            "/model/us.anthropic.claude-3-7-sonnet-20250219-v1%253A0/converse"
        );
        assert_eq!(canonical_uri(""), "/");
        assert_eq!(canonical_query("b=2&a=%2F&a=1"), "a=%2F&a=1&b=2");
        assert_eq!(collapse_spaces("  a   b \t c "), "a b c");
        assert_eq!(
            split_url("http://127.0.0.1:9/model/x/converse"),
            Some(("127.0.0.1:9", "/model/x/converse", ""))
        );
        assert_eq!(split_url("ftp://x/"), None);
        assert!(sign(
            "POST",
            "nope",
            &[],
            b"",
            EXAMPLE,
            Scope {
                region: "r",
                service: "s"
            },
            example_time()
        )
        .is_err());
    }
}
