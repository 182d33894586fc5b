//! Unit tests of `aws`.

use super::*;

fn h(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut m = HeaderMap::new();
    for (k, v) in pairs {
        m.insert(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    m
}

#[test]
fn credentials_parse_and_errors_never_echo_the_value() {
    let c = parse_credentials(
        &Secret::new("AKIAIOSFODNN7EXAMPLE:wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY\n"),
        "keyring:aws",
    )
    .unwrap();
    assert_eq!(c.access_key_id, "AKIAIOSFODNN7EXAMPLE");
    assert_eq!(
        c.secret_access_key.expose(),
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
    );
    assert!(c.session_token.is_none());
    assert!(!format!("{c:?}").contains("wJalr"));
    let c = parse_credentials(&Secret::new("ASIAIOSFODNN7EXAMPLE:abc:tok/en+=="), "x").unwrap();
    assert_eq!(c.session_token.unwrap().expose(), "tok/en+==");

    for (value, why) in [
        ("", "empty"),
        ("justonesecretvaluewithoutcolon", "1 ':'-separated"),
        ("AKIAIOSFODNN7EXAMPLE:a:b:c", "4 ':'-separated"),
        ("AKIA-bad-key-id-xxxx:s3cr3tvalue", "access key id"),
        ("short:s3cr3tvalue", "access key id"),
        ("AKIAIOSFODNN7EXAMPLE:s3cr3t value", "whitespace"),
        ("AKIAIOSFODNN7EXAMPLE:", "secret access key"),
    ] {
        let e = parse_credentials(&Secret::new(value), "keyring:aws-prod").unwrap_err();
        assert!(e.contains(why), "{value:?}: {e}");
        assert!(e.contains("keyring:aws-prod"), "{e}");
        assert!(e.contains("ACCESS_KEY_ID:SECRET_ACCESS_KEY"), "{e}");
        for part in value.split(':').filter(|p| p.len() >= 4) {
            assert!(!e.contains(part), "echoed {part:?}: {e}");
        }
    }
}

/// The worked example from the AWS SigV4 documentation (IAM ListUsers, GET, 2015-08-30
/// 12:36:00 UTC): the crate must produce the documented signature from our request.
#[test]
fn signs_the_documented_iam_example() {
    // The documentation's key id is shorter than real ones, so build the pair directly.
    let creds = AwsCredentials {
        access_key_id: "AKIDEXAMPLE".into(),
        secret_access_key: Secret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
        session_token: None,
    };
    let auth = SigV4Auth::new("iam", "us-east-1", &creds, "test");
    let mut req = reqwest::Request::new(
        reqwest::Method::GET,
        "https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08"
            .parse()
            .unwrap(),
    );
    req.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"),
    );
    let t = std::time::UNIX_EPOCH + Duration::from_secs(1_440_938_160);
    auth.sign_at(&mut req, t).unwrap();
    assert_eq!(req.headers()["x-amz-date"], "20150830T123600Z");
    let authz = req.headers()["authorization"].to_str().unwrap();
    assert_eq!(
        authz,
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date, \
             Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
    );
    assert!(req.headers()["authorization"].is_sensitive());
}

#[test]
fn signs_body_and_session_token() {
    let creds = parse_credentials(
        &Secret::new("AKIDEXAMPLE00000000:secret:sessiontoken"),
        "test",
    )
    .unwrap();
    let auth = SigV4Auth::new("identitystore", "eu-west-1", &creds, "test");
    let sign = |body: &'static str| {
        let mut req = reqwest::Request::new(
            reqwest::Method::POST,
            "http://127.0.0.1:9/".parse().unwrap(),
        );
        *req.body_mut() = Some(body.into());
        auth.sign_at(
            &mut req,
            std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        )
        .unwrap();
        req
    };
    let a = sign("{\"a\":1}");
    let b = sign("{\"a\":2}");
    assert_eq!(a.headers()["x-amz-security-token"], "sessiontoken");
    assert_ne!(a.headers()["authorization"], b.headers()["authorization"]);
    assert!(
        a.headers()["authorization"]
            .to_str()
            .unwrap()
            .contains("/eu-west-1/identitystore/aws4_request")
    );
}

#[test]
fn errors_are_read_from_json_xml_and_the_header() {
    let e = extract_error(
            &h(&[]),
            br#"{"__type":"com.amazonaws.identitystore#ConflictException","Message":"Duplicate UserName","Reason":"UNIQUENESS_CONSTRAINT_VIOLATION"}"#,
        );
    assert_eq!(e.code.as_deref(), Some("ConflictException"));
    assert_eq!(e.reason.as_deref(), Some("UNIQUENESS_CONSTRAINT_VIOLATION"));
    let e = extract_error(
            &h(&[]),
            b"<ErrorResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><Error><Type>Sender</Type><Code>EntityAlreadyExists</Code><Message>User bob already exists</Message></Error><RequestId>1</RequestId></ErrorResponse>",
        );
    assert_eq!(e.code.as_deref(), Some("EntityAlreadyExists"));
    assert_eq!(e.message.as_deref(), Some("User bob already exists"));
    // moto's shape for auth failures nests Error in Errors.
    let e = extract_error(
            &h(&[]),
            b"<?xml version=\"1.0\"?><ErrorResponse><Errors><Error><Code>SignatureDoesNotMatch</Code><Message>bad sig</Message><Type>Sender</Type></Error></Errors></ErrorResponse>",
        );
    assert_eq!(e.code.as_deref(), Some("SignatureDoesNotMatch"));
    let e = extract_error(
        &h(&[(
            "x-amzn-errortype",
            "ThrottlingException:http://internal.amazon.com/coral/",
        )]),
        b"<html>gateway</html",
    );
    assert_eq!(e.code.as_deref(), Some("ThrottlingException"));
    assert!(!e.structured);
}

#[test]
fn classification_by_code() {
    let c = |code: &str, status: u16, body: &str| {
        classify_aws("aws", "keyring:aws", status, &h(&[]), body.as_bytes(), "x")
            .class
            .name()
            .to_string()
            + "/"
            + code
    };
    let xml = |code: &str| {
        format!(
            "<ErrorResponse><Error><Code>{code}</Code><Message>m</Message></Error></ErrorResponse>"
        )
    };
    for (code, status, class) in [
        ("EntityAlreadyExists", 409, "conflict"),
        ("NoSuchEntity", 404, "not_found"),
        ("Throttling", 400, "rate_limited"),
        ("ThrottlingException", 400, "rate_limited"),
        ("RequestLimitExceeded", 400, "rate_limited"),
        ("SignatureDoesNotMatch", 403, "unauthorized"),
        ("InvalidClientTokenId", 403, "unauthorized"),
        ("ExpiredToken", 403, "unauthorized"),
        ("AccessDenied", 403, "permanent"),
        ("ServiceUnavailable", 503, "transient"),
        ("ServiceFailure", 500, "transient"),
        ("LimitExceeded", 409, "permanent"),
        ("ValidationError", 400, "permanent"),
        ("MalformedInput", 400, "permanent"),
        ("SomethingNew", 502, "transient"),
        ("SomethingNew", 400, "permanent"),
    ] {
        assert_eq!(c(code, status, &xml(code)), format!("{class}/{code}"));
    }
    let e = classify_aws(
        "idstore",
        "keyring:aws",
        400,
        &h(&[]),
        br#"{"__type":"ConflictException","Message":"busy","Reason":"CONCURRENT_MODIFICATION"}"#,
        "x",
    );
    assert_eq!(e.class, ErrorClass::Transient);
    let e = classify_aws(
        "idstore",
        "keyring:aws",
        400,
        &h(&[]),
        br#"{"__type":"ThrottlingException","Message":"slow","RetryAfterSeconds":2}"#,
        "x",
    );
    assert_eq!(
        e.class,
        ErrorClass::RateLimited {
            retry_after: Some(Duration::from_secs(2))
        }
    );
    let e = classify_aws(
        "iam",
        "keyring:aws",
        403,
        &h(&[]),
        xml("AccessDenied").as_bytes(),
        "x",
    );
    assert!(e.message.contains("keyring:aws"), "{}", e.message);
    assert_eq!(e.vendor_code.as_deref(), Some("AccessDenied"));
}

#[test]
fn throttling_sets_the_rate_signal() {
    let body = b"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error></ErrorResponse>";
    let s = aws_rate_signal(400, &h(&[]), body);
    assert!(s.throttled);
    assert_eq!(s.retry_after, None);
    assert!(
        !aws_rate_signal(
            409,
            &h(&[]),
            b"<ErrorResponse><Error><Code>EntityAlreadyExists</Code></Error></ErrorResponse>"
        )
        .throttled
    );
    assert!(!aws_rate_signal(200, &h(&[]), b"<ok/>").throttled);
}

#[test]
fn bad_error_bodies_are_classified_not_panicked() {
    // HTML from a gateway.
    let e = classify_aws(
        "iam",
        "k",
        502,
        &h(&[]),
        b"<!DOCTYPE html><html><body>Bad gateway</body></html>",
        "an IAM XML response",
    );
    assert_eq!(e.class, ErrorClass::Transient);
    assert!(e.message.contains("HTML"), "{}", e.message);
    assert_eq!(e.status, Some(502));
    assert!(e.excerpt.contains("Bad gateway"));
    // Truncated XML on a 4xx: permanent, with the excerpt.
    let e = classify_aws("iam", "k", 400, &h(&[]), b"<ErrorResponse><Error><Co", "x");
    assert_eq!(e.class, ErrorClass::Permanent);
    assert!(e.excerpt.contains("<ErrorResponse"));
    // Binary garbage on a 503.
    let e = classify_aws("iam", "k", 503, &h(&[]), &[0xff, 0xfe, 0x00, 0x01], "x");
    assert_eq!(e.class, ErrorClass::Transient);
    // A 429 with no body is still rate limiting.
    let e = classify_aws("iam", "k", 429, &h(&[("retry-after", "3")]), b"", "x");
    assert_eq!(
        e.class,
        ErrorClass::RateLimited {
            retry_after: Some(Duration::from_secs(3))
        }
    );
}

#[test]
fn result_parsing_rejects_wrong_shapes() {
    let ok = b"<ListUsersResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><ListUsersResult><Users/><IsTruncated>false</IsTruncated></ListUsersResult></ListUsersResponse>";
    let n = with_result("iam", "ListUsers", 200, ok, |r| {
        Some(members(r, "Users").len())
    })
    .unwrap();
    assert_eq!(n, 0);
    // Another action's response.
    let e = with_result("iam", "GetUser", 200, ok, |_| Some(())).unwrap_err();
    assert_eq!(e.class, ErrorClass::Transient);
    assert_eq!(e.status, Some(200));
    // Truncated.
    let e = with_result("iam", "ListUsers", 200, &ok[..60], |_| Some(())).unwrap_err();
    assert!(e.message.contains("ListUsersResponse"), "{}", e.message);
    // HTML.
    let e = with_result(
        "iam",
        "ListUsers",
        200,
        b"<html><body>captive portal</body></html>",
        |_| Some(()),
    )
    .unwrap_err();
    assert!(e.message.contains("HTML"), "{}", e.message);
    // Empty and non-UTF-8.
    assert!(with_result("iam", "ListUsers", 200, b"", |_| Some(())).is_err());
    assert!(with_result("iam", "ListUsers", 200, &[0xc3, 0x28], |_| Some(())).is_err());
    // A DTD (entity expansion) is refused by the parser.
    let dtd = b"<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY a \"aaaa\">]><ListUsersResponse>&a;</ListUsersResponse>";
    assert!(with_result("iam", "ListUsers", 200, dtd, |_| Some(())).is_err());
}

#[test]
fn markers() {
    let parse = |xml: &str| {
        let doc = roxmltree::Document::parse(xml).unwrap();
        next_marker(doc.root_element())
    };
    assert_eq!(
        parse("<R><IsTruncated>true</IsTruncated><Marker>abc</Marker></R>"),
        Some(Some("abc".into()))
    );
    assert_eq!(parse("<R><IsTruncated>false</IsTruncated></R>"), Some(None));
    assert_eq!(parse("<R></R>"), Some(None));
    assert_eq!(parse("<R><IsTruncated>true</IsTruncated></R>"), None);
    assert_eq!(parse("<R><IsTruncated>maybe</IsTruncated></R>"), None);
}

#[test]
fn regions_and_arns() {
    assert!(valid_region("us-east-1"));
    assert!(valid_region("us-gov-west-1"));
    assert!(!valid_region("US-EAST-1"));
    assert!(!valid_region("us east"));
    assert!(!valid_region(""));
    assert_eq!(
        arn_account("arn:aws:iam::123456789012:user/bob"),
        Some("123456789012")
    );
    assert_eq!(arn_account("nonsense"), None);
}
