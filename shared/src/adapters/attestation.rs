//! Device attestation adapters.

use crate::domain::attestation::AttestationSubject;
use crate::ports::{AttestationError, DeviceAttestation};

/// Accepts every device, as COCOA did with `*DeviceValidationEnabled=false`. The SafetyNet and
/// DeviceCheck verifiers replace it per platform when they are switched on.
#[derive(Debug, Default, Clone, Copy)]
pub struct PermitAllDevices;

impl DeviceAttestation for PermitAllDevices {
    async fn attest(&self, _subject: &AttestationSubject) -> Result<(), AttestationError> {
        Ok(())
    }
}
