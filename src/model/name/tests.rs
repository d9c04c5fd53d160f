use super::*;

#[test]
fn parse_waha_pattern_accepts_letters_digits_dash_underscore() {
    for ok in ["default", "a", "A-b_9", &"x".repeat(WAHA_MAX_LEN)] {
        let name = SessionName::parse(ok, WAHA_MAX_LEN).expect(ok);
        assert_eq!(name.as_str(), ok);
    }
}

#[test]
fn parse_unsafe_characters_rejected_as_pattern() {
    for bad in [
        "..",
        "../escape",
        "a/b",
        "a\\b",
        "nul\0byte",
        "a.b",
        "a b",
        "é",
        "a$b",
    ] {
        let err = SessionName::parse(bad, WAHA_MAX_LEN).unwrap_err();
        assert_eq!(err.problems, [NameProblem::Pattern], "{bad:?}");
    }
}

#[test]
fn parse_empty_rejected() {
    let err = SessionName::parse("", WAHA_MAX_LEN).unwrap_err();
    assert_eq!(err.problems, [NameProblem::Empty]);
}

#[test]
fn parse_too_long_and_bad_reports_both_in_waha_order() {
    let name = format!("{}!", "x".repeat(WAHA_MAX_LEN));
    let err = SessionName::parse(&name, WAHA_MAX_LEN).unwrap_err();
    assert_eq!(
        err.problems,
        [
            NameProblem::TooLong { max: WAHA_MAX_LEN },
            NameProblem::Pattern
        ]
    );
}

#[test]
fn max_len_embedded_is_waha_cap() {
    assert_eq!(max_len(None), 54);
}

#[test]
fn max_len_mongo_keeps_database_name_under_64_bytes() {
    // `waha_gows_` is 10 bytes: 54 still fits (64 bytes would not).
    assert_eq!(max_len(Some("gows")), 53);
    let ns = "n".repeat(30);
    let max = max_len(Some(&ns));
    assert_eq!(format!("waha_{ns}_{}", "x".repeat(max)).len(), 63);
    assert_eq!(max_len(Some(&"n".repeat(100))), 0);
}
