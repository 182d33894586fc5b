//! Unit tests of `aws`.

use super::*;
use axum::http::{HeaderMap, HeaderValue};

#[test]
fn authorization_headers_are_parsed_strictly() {
    let good = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7";
    let a = parse_authorization(good).unwrap();
    assert_eq!(
        (
            a.key_id.as_str(),
            a.date.as_str(),
            a.region.as_str(),
            a.service.as_str()
        ),
        ("AKIDEXAMPLE", "20150830", "us-east-1", "iam")
    );
    assert_eq!(a.signed_headers, ["content-type", "host", "x-amz-date"]);
    for bad in [
        "",
        "Bearer abc",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request",
        &good.replace("aws4_request", "aws5_request"),
        &good.replace("20150830", "2015083"),
        &good.replace("Signature=5d", "Signature=zz"),
        &good.replace("content-type;host;x-amz-date", "content-type;x-amz-date"),
        &good.replace(", Signature=", ", Sig="),
    ] {
        assert!(parse_authorization(bad).is_none(), "{bad}");
    }
}

/// The documented SigV4 example (IAM ListUsers, GET): the recomputation agrees.
#[test]
fn the_documented_example_verifies() {
    let a = parse_authorization("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7").unwrap();
    let mut h = HeaderMap::new();
    h.insert("host", HeaderValue::from_static("iam.amazonaws.com"));
    h.insert(
        "content-type",
        HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"),
    );
    h.insert("x-amz-date", HeaderValue::from_static("20150830T123600Z"));
    let t = parse_amz_date("20150830T123600Z").unwrap();
    let sig = expected_signature(
        &a,
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        "GET",
        "/?Action=ListUsers&Version=2010-05-08",
        &h,
        b"",
        t,
    );
    assert_eq!(sig.as_deref(), Some(a.signature.as_str()));
    let wrong = expected_signature(
        &a,
        "not-the-secret",
        "GET",
        "/?Action=ListUsers&Version=2010-05-08",
        &h,
        b"",
        t,
    );
    assert_ne!(wrong.as_deref(), Some(a.signature.as_str()));
    // A host the signer could not use is a refusal, not a panic.
    h.insert("host", HeaderValue::from_static(""));
    assert_eq!(expected_signature(&a, "x", "GET", "/", &h, b"", t), None);
}
