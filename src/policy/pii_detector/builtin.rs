//! The built-in detectors of `pii-detector`: each a regex that finds candidates and a
//! check that validates them. Order matters only for ties (same start, same length).
//! Every pattern uses ASCII word boundaries (`(?-u:\b)`) so the lazy DFA that measures
//! stream hold-back never has to give up on non-ASCII text.

use super::checks;
use crate::policy::scan::DetectorSpec;

/// What a finding kind is called in a block message, and the label of its marker.
pub struct Kind {
    pub kind: &'static str,
    pub label: &'static str,
    pub description: &'static str,
}

pub const KINDS: &[Kind] = &[
    Kind {
        kind: "private_key",
        label: "PRIVATE_KEY",
        description: "a private key",
    },
    Kind {
        kind: "jwt",
        label: "JWT",
        description: "an access token (JWT)",
    },
    Kind {
        kind: "anthropic_api_key",
        label: "ANTHROPIC_API_KEY",
        description: "an Anthropic API key",
    },
    Kind {
        kind: "openai_api_key",
        label: "OPENAI_API_KEY",
        description: "an OpenAI API key",
    },
    Kind {
        kind: "aws_access_key",
        label: "AWS_ACCESS_KEY",
        description: "an AWS access key",
    },
    Kind {
        kind: "aws_secret_key",
        label: "AWS_SECRET_KEY",
        description: "an AWS secret key",
    },
    Kind {
        kind: "github_token",
        label: "GITHUB_TOKEN",
        description: "a GitHub token",
    },
    Kind {
        kind: "slack_token",
        label: "SLACK_TOKEN",
        description: "a Slack token",
    },
    Kind {
        kind: "slack_webhook",
        label: "SLACK_WEBHOOK",
        description: "a Slack webhook URL",
    },
    Kind {
        kind: "google_api_key",
        label: "GOOGLE_API_KEY",
        description: "a Google API key",
    },
    Kind {
        kind: "stripe_key",
        label: "STRIPE_KEY",
        description: "a Stripe key",
    },
    Kind {
        kind: "credit_card",
        label: "CREDIT_CARD",
        description: "a payment card number",
    },
    Kind {
        kind: "card_security_code",
        label: "CARD_CVV",
        description: "a card security code",
    },
    Kind {
        kind: "card_expiry",
        label: "CARD_EXPIRY",
        description: "a card expiry date",
    },
    Kind {
        kind: "iban",
        label: "IBAN",
        description: "a bank account number (IBAN)",
    },
    Kind {
        kind: "us_ssn",
        label: "US_SSN",
        description: "a US Social Security number",
    },
    Kind {
        kind: "mrn",
        label: "MRN",
        description: "a medical record number",
    },
    Kind {
        kind: "npi",
        label: "NPI",
        description: "a provider identifier (NPI)",
    },
    Kind {
        kind: "insurance_id",
        label: "INSURANCE_ID",
        description: "an insurance member ID",
    },
    Kind {
        kind: "phone",
        label: "PHONE",
        description: "a phone number",
    },
    Kind {
        kind: "email",
        label: "EMAIL",
        description: "an email address",
    },
    Kind {
        kind: "ipv4",
        label: "IP_ADDRESS",
        description: "an IP address",
    },
    Kind {
        kind: "ipv6",
        label: "IP_ADDRESS",
        description: "an IP address",
    },
];

pub fn kind(name: &str) -> Option<&'static Kind> {
    KINDS.iter().find(|k| k.kind == name)
}

/// Kinds whose partial form reveals only a fixed prefix (secrets).
pub fn is_secret(kind: &str) -> bool {
    matches!(
        kind,
        "private_key"
            | "jwt"
            | "anthropic_api_key"
            | "openai_api_key"
            | "aws_access_key"
            | "aws_secret_key"
            | "github_token"
            | "slack_token"
            | "slack_webhook"
            | "google_api_key"
            | "stripe_key"
    )
}

const B: &str = r"(?-u:\b)";

fn d(kind: &str, pattern: String, check: crate::policy::scan::Check) -> DetectorSpec {
    DetectorSpec::new(kind, pattern).check(check)
}

/// The detectors for the given modes.
pub fn detectors(healthcare: bool, pci: bool) -> Vec<DetectorSpec> {
    let mut v = vec![
        // A whole block; without its END line, the header and the base64 body after it.
        DetectorSpec::new(
            "private_key",
            r"-----BEGIN (?:[A-Z0-9]{1,12} ){0,3}PRIVATE KEY(?: BLOCK)?-----(?:[\s\S]*?-----END (?:[A-Z0-9]{1,12} ){0,3}PRIVATE KEY(?: BLOCK)?-----|(?:\r?\n[A-Za-z0-9+/=]{16,100})*)",
        ),
        d(
            "jwt",
            format!(r"{B}eyJ[A-Za-z0-9_\-]{{4,}}\.eyJ[A-Za-z0-9_\-]{{2,}}\.[A-Za-z0-9_\-]*"),
            checks::jwt,
        ),
        d(
            "anthropic_api_key",
            format!(r"{B}sk-ant-[a-z]{{2,8}}[0-9]{{2}}-[A-Za-z0-9_\-]{{20,200}}"),
            checks::token,
        ),
        d(
            "openai_api_key",
            format!(r"{B}sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{{20,200}}"),
            checks::openai_key,
        ),
        d(
            "aws_access_key",
            format!(r"{B}(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{{16}}{B}"),
            checks::token,
        ),
        d(
            "aws_secret_key",
            r#"(?i:aws_?secret_?access_?key|aws_?secret)["']?\s{0,3}[:=]\s{0,3}["']?(?P<v>[A-Za-z0-9/+]{40})"#
                .to_string(),
            checks::aws_secret,
        ),
        d(
            "github_token",
            format!(r"{B}(?:gh[pousr]_[A-Za-z0-9]{{36,251}}|github_pat_[A-Za-z0-9_]{{22,251}})"),
            checks::token,
        ),
        d(
            "slack_token",
            format!(r"{B}xox[abposr]-[A-Za-z0-9\-]{{10,250}}"),
            checks::token,
        ),
        d(
            "slack_webhook",
            r"https://hooks\.slack\.com/services/[A-Za-z0-9_/]{20,120}".to_string(),
            checks::token,
        ),
        d(
            "google_api_key",
            format!(r"{B}AIza[0-9A-Za-z_\-]{{35}}"),
            checks::token,
        ),
        d(
            "stripe_key",
            format!(r"{B}(?:sk|rk|pk)_(?:live|test)_[0-9A-Za-z]{{16,247}}{B}"),
            checks::token,
        ),
        d(
            "credit_card",
            format!(r"{B}[0-9](?:[ \-]?[0-9]){{11,18}}{B}"),
            if pci { checks::card_any } else { checks::card_branded },
        ),
        d(
            "iban",
            format!(r"{B}[A-Za-z]{{2}}[0-9]{{2}}(?: ?[A-Za-z0-9]){{11,30}}{B}"),
            checks::iban,
        ),
        d(
            "us_ssn",
            format!(r"{B}(?:[0-9]{{3}}-[0-9]{{2}}-[0-9]{{4}}|[0-9]{{3}} [0-9]{{2}} [0-9]{{4}}){B}"),
            checks::us_ssn,
        ),
        d(
            "us_ssn",
            format!(r"(?i:{B}ssn|social security (?:number|no\.?))\s{{0,3}}[:#]?\s{{0,3}}(?P<v>[0-9]{{9}}){B}"),
            checks::us_ssn,
        ),
    ];
    if pci {
        v.push(DetectorSpec::new(
            "card_security_code",
            format!(r"(?i:{B}(?:cvv2?|cvc2?|cid|csc|card security code|security code))\s{{0,3}}[:#]?\s{{0,3}}(?P<v>[0-9]{{3,4}}){B}"),
        ));
        v.push(DetectorSpec::new(
            "card_expiry",
            format!(r"(?i:{B}(?:exp(?:iry|iration)?(?: date)?|valid (?:thru|through)|expires))\s{{0,3}}[:#]?\s{{0,3}}(?P<v>(?:0[1-9]|1[0-2]) ?/ ?(?:20)?[0-9]{{2}}){B}"),
        ));
    }
    if healthcare {
        v.push(d(
            "mrn",
            format!(r"(?i:{B}(?:mrn|medical record (?:number|no\.?|#)|patient id))\s{{0,3}}[:#]?\s{{0,3}}(?P<v>[A-Za-z0-9][A-Za-z0-9\-]{{3,19}}){B}"),
            checks::labelled_id,
        ));
        v.push(d("npi", format!(r"{B}[12][0-9]{{9}}{B}"), checks::npi));
        v.push(d(
            "insurance_id",
            format!(r"(?i:{B}(?:member|subscriber|policy|insurance|medicaid|medicare|beneficiary|health plan)\s?(?:id|number|no\.?|#))\s{{0,3}}[:#]?\s{{0,3}}(?P<v>[A-Za-z0-9][A-Za-z0-9\-]{{5,19}}){B}"),
            checks::labelled_id,
        ));
        // Medicare Beneficiary Identifier: a fixed letter/digit layout, dashes optional.
        v.push(DetectorSpec::new(
            "insurance_id",
            format!(r"{B}[1-9][AC-HJKMNP-RT-Y][AC-HJKMNP-RT-Y0-9][0-9]-?[AC-HJKMNP-RT-Y][AC-HJKMNP-RT-Y0-9][0-9]-?[AC-HJKMNP-RT-Y]{{2}}[0-9]{{2}}{B}"),
        ));
    }
    v.push(d(
        "phone",
        format!(r"(?:\+|{B}00)[1-9][0-9]{{0,2}}[ .\-]?\(?[0-9]{{1,5}}\)?(?:[ .\-]?\(?[0-9]{{2,5}}\)?){{0,6}}"),
        checks::phone_international,
    ));
    v.push(d(
        "phone",
        format!(r"(?:(?:{B}1|\+1)[ .\-]?)?(?:\([2-9][0-9]{{2}}\) ?|{B}[2-9][0-9]{{2}}[ .\-])[2-9][0-9]{{2}}[ .\-][0-9]{{4}}{B}"),
        checks::phone_nanp,
    ));
    v.push(d(
        "email",
        format!(r"{B}[A-Za-z0-9][A-Za-z0-9._%+\-]{{0,63}}@(?:[A-Za-z0-9\-]{{1,63}}\.){{1,8}}[A-Za-z]{{2,24}}{B}"),
        checks::email,
    ));
    v.push(d(
        "ipv4",
        // Up to 8 parts, so a longer dotted number is seen whole and rejected.
        format!(r"{B}[0-9]{{1,3}}(?:\.[0-9]{{1,3}}){{3,7}}{B}"),
        checks::ipv4,
    ));
    v.push(d(
        "ipv6",
        r"[0-9A-Fa-f]{0,4}::?[0-9A-Fa-f:.]{1,44}".to_string(),
        checks::ipv6,
    ));
    v
}
