//! What a device attestation is checked against: COCOA's "clear text" of a request, whose SHA-256
//! is the SafetyNet nonce (Android), and the DeviceCheck transaction-id seed (iOS)
//! (reference/cocoa-api.md §5.2–§5.3).
//!
//! The texts include the processing number (v3, v2), so none of these types is `Debug`, and the
//! texts are built only when an enabled verifier asks for them.

/// A key as the app put it into the clear text: its fields as submitted (before any filtering;
/// the app signs what it sends, so the server checks against all of it, where COCOA's server
/// used the filtered list and failed every request that had a key filtered out).
pub struct KeyText {
    pub key_data: String,
    pub rolling_start_number: u32,
    pub rolling_period: u32,
    pub report_type: u32,
}

/// One event-log entry as the app put it into the event-log clear text.
pub struct EventLogText {
    pub has_consent: bool,
    pub epoch: i64,
    pub kind: String,
    pub subtype: String,
    /// The entry's `content`, as compact JSON (Newtonsoft `ToString(Formatting.None)`).
    pub content_json: String,
}

/// The request fields a clear text is built from.
pub enum ClearTextSource {
    V3 {
        app_package_name: String,
        /// `onsetOfSymptomOrTestDate` byte for byte as sent.
        onset: String,
        has_symptom: bool,
        keys: Vec<KeyText>,
        regions: Vec<String>,
        verification_payload: String,
    },
    V2 {
        app_package_name: String,
        keys: Vec<KeyText>,
        regions: Vec<String>,
        verification_payload: String,
    },
    EventLog {
        idempotency_key: String,
        app_package_name: String,
        logs: Vec<EventLogText>,
    },
}

/// A device-attestation question: the platform the app says it runs on, its payload (SafetyNet
/// JWS or base64 DeviceCheck token), and what the payload must vouch for.
pub struct AttestationSubject {
    pub platform: String,
    pub payload: String,
    pub clear_text: ClearTextSource,
}

impl ClearTextSource {
    /// The text whose SHA-256 is the SafetyNet nonce.
    pub fn nonce_text(&self) -> String {
        crate::domain::clear_text::nonce_text(self)
    }

    /// The text whose SHA-256 (base64) is the DeviceCheck `transaction_id`.
    pub fn transaction_seed(&self) -> String {
        crate::domain::clear_text::transaction_seed(self)
    }
}
