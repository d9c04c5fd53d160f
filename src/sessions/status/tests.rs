use super::{Input, SessionStatus as S, next};

#[test]
fn next_happy_path_qr_to_working() {
    assert_eq!(next(S::Stopped, &Input::Start), Some(S::Starting));
    assert_eq!(next(S::Starting, &Input::QrCode), Some(S::ScanQrCode));
    assert_eq!(
        next(S::ScanQrCode, &Input::QrCode),
        Some(S::ScanQrCode),
        "every rotation is an event"
    );
    assert_eq!(next(S::ScanQrCode, &Input::Connected), Some(S::Working));
}

#[test]
fn next_stored_credentials_go_straight_to_working() {
    assert_eq!(next(S::Starting, &Input::Connected), Some(S::Working));
}

#[test]
fn next_transient_disconnect_goes_back_to_starting() {
    assert_eq!(next(S::Working, &Input::Disconnected), Some(S::Starting));
    assert_eq!(next(S::Starting, &Input::Connected), Some(S::Working));
    assert_eq!(next(S::Starting, &Input::Disconnected), None);
}

#[test]
fn next_terminal_failures() {
    assert_eq!(next(S::ScanQrCode, &Input::QrExhausted), Some(S::Failed));
    assert_eq!(next(S::Working, &Input::LoggedOut), Some(S::Failed));
    assert_eq!(next(S::Working, &Input::StreamReplaced), Some(S::Failed));
    assert_eq!(next(S::Starting, &Input::ConnectFailed), Some(S::Failed));
    assert_eq!(next(S::Working, &Input::QrExhausted), None);
}

#[test]
fn next_stop_always_stops_and_start_only_from_rest() {
    for s in [S::Starting, S::ScanQrCode, S::Working, S::Failed] {
        assert_eq!(next(s, &Input::Stop), Some(S::Stopped));
    }
    assert_eq!(next(S::Stopped, &Input::Stop), None);
    assert_eq!(next(S::Failed, &Input::Start), Some(S::Starting));
    assert_eq!(next(S::Working, &Input::Start), None);
}

#[test]
fn next_stopped_ignores_engine_noise() {
    for input in [
        Input::QrCode,
        Input::Connected,
        Input::Disconnected,
        Input::LoggedOut,
    ] {
        assert_eq!(next(S::Stopped, &input), None, "{input:?}");
    }
}

#[test]
fn wire_names_match_waha() {
    assert_eq!(
        serde_json::to_string(&S::ScanQrCode).unwrap(),
        "\"SCAN_QR_CODE\""
    );
    assert_eq!(
        serde_json::to_string(&S::PasskeyConfirmationRequired).unwrap(),
        "\"PASSKEY_CONFIRMATION_REQUIRED\""
    );
    assert_eq!(S::Working.as_str(), "WORKING");
}
