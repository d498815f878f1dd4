//! Q.850 hangup causes: Switchboard names them as FreeSWITCH does (`NORMAL_CLEARING`); ARI
//! speaks numbers (`ChannelDestroyed.cause`, `DELETE /channels/{id}?reason_code=`) and a few
//! words (`?reason=normal|busy|congestion|no_answer|timeout|rejected|unallocated|…`).

use crate::media::HangupCause;

/// (code, name) of the Q.850 causes Asterisk uses (`causes.h`).
const CAUSES: &[(i64, &str)] = &[
    (1, "UNALLOCATED_NUMBER"),
    (2, "NO_ROUTE_TRANSIT_NET"),
    (3, "NO_ROUTE_DESTINATION"),
    (6, "CHANNEL_UNACCEPTABLE"),
    (7, "CALL_AWARDED_DELIVERED"),
    (16, "NORMAL_CLEARING"),
    (17, "USER_BUSY"),
    (18, "NO_USER_RESPONSE"),
    (19, "NO_ANSWER"),
    (20, "SUBSCRIBER_ABSENT"),
    (21, "CALL_REJECTED"),
    (22, "NUMBER_CHANGED"),
    (27, "DESTINATION_OUT_OF_ORDER"),
    (28, "INVALID_NUMBER_FORMAT"),
    (29, "FACILITY_REJECTED"),
    (30, "RESPONSE_TO_STATUS_ENQUIRY"),
    (31, "NORMAL_UNSPECIFIED"),
    (34, "NORMAL_CIRCUIT_CONGESTION"),
    (38, "NETWORK_OUT_OF_ORDER"),
    (41, "NORMAL_TEMPORARY_FAILURE"),
    (42, "SWITCH_CONGESTION"),
    (47, "RESOURCE_UNAVAILABLE"),
    (50, "FACILITY_NOT_SUBSCRIBED"),
    (57, "BEARERCAPABILITY_NOTAUTH"),
    (58, "BEARERCAPABILITY_NOTAVAIL"),
    (65, "BEARERCAPABILITY_NOTIMPL"),
    (66, "CHAN_NOT_IMPLEMENTED"),
    (69, "FACILITY_NOT_IMPLEMENTED"),
    (81, "INVALID_CALL_REFERENCE"),
    (88, "INCOMPATIBLE_DESTINATION"),
    (95, "INVALID_MSG_UNSPECIFIED"),
    (96, "MANDATORY_IE_MISSING"),
    (97, "MESSAGE_TYPE_NONEXIST"),
    (102, "RECOVERY_ON_TIMER_EXPIRE"),
    (111, "PROTOCOL_ERROR"),
    (127, "INTERWORKING"),
];

/// Asterisk's `cause_txt` for a code (`ast_cause2str`), as the emulator writes it.
pub fn cause_text(code: i64) -> &'static str {
    match code {
        1 => "Unallocated (unassigned) number",
        3 => "No route to destination",
        16 => "Normal Clearing",
        17 => "User busy",
        18 => "No user responding",
        19 => "User alerting, no answer",
        21 => "Call Rejected",
        27 => "Destination out of order",
        34 => "Circuit/channel congestion",
        38 => "Network out of order",
        41 => "Temporary failure",
        66 => "Channel not implemented",
        _ => "Unknown",
    }
}

/// The cause for an ARI code; an unknown code keeps its number (`CAUSE_99`).
pub fn cause_from_code(code: i64) -> HangupCause {
    match CAUSES.iter().find(|(c, _)| *c == code) {
        Some((_, name)) => HangupCause((*name).to_owned()),
        None => HangupCause(format!("CAUSE_{code}")),
    }
}

/// The code for a cause name; `ORIGINATOR_CANCEL` (FreeSWITCH's own) is 16, as Asterisk
/// reports a caller's cancel. Unknown names give `None`.
pub fn code_from_cause(cause: &HangupCause) -> Option<i64> {
    let name = cause.as_str();
    if name == "ORIGINATOR_CANCEL" {
        return Some(16);
    }
    if let Some(n) = name.strip_prefix("CAUSE_") {
        return n.parse().ok();
    }
    CAUSES.iter().find(|(_, n)| *n == name).map(|(c, _)| *c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_codes_round_trip() {
        for (code, _) in CAUSES {
            assert_eq!(code_from_cause(&cause_from_code(*code)), Some(*code));
        }
        assert_eq!(cause_from_code(16), HangupCause::normal_clearing());
        assert_eq!(cause_from_code(17), HangupCause::user_busy());
        assert_eq!(cause_from_code(19), HangupCause::no_answer());
        assert_eq!(code_from_cause(&HangupCause::no_circuit()), Some(34));
        assert_eq!(cause_from_code(99).as_str(), "CAUSE_99");
        assert_eq!(code_from_cause(&HangupCause("CAUSE_99".into())), Some(99));
        assert_eq!(code_from_cause(&HangupCause("NOPE".into())), None);
    }
}
