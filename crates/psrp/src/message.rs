//! PSRP messages (MS-PSRP 2.2.1): the 40-byte header and the message types exctl uses.
//!
//! Header: Destination (u32, little endian; 1 client, 2 server), MessageType (u32, little
//! endian), the RunspacePool id and the pipeline id (GUIDs in .NET byte order: the first
//! three fields little endian), then the data, UTF-8 CLIXML, which servers start with a
//! byte-order mark. Pure: no I/O.
//!
//! Source: [MS-PSRP] 2.2.1, PowerShell Remoting Protocol Message
//! (https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-psrp/497ac440-89fb-4cb3-9cc1-3434c1aa74c3).

use uuid::Uuid;

use crate::error::Error;

/// The header's length.
pub const HEADER_LEN: usize = 40;

/// Who a message is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// The client.
    Client,
    /// The server.
    Server,
}

impl Destination {
    fn code(self) -> u32 {
        match self {
            Destination::Client => 1,
            Destination::Server => 2,
        }
    }
}

/// Message types (MS-PSRP 2.2.1), with their wire values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// Versions each side speaks.
    SessionCapability,
    /// Opens a pool.
    InitRunspacePool,
    /// Client's public key (secure strings).
    PublicKey,
    /// Server's session key (secure strings).
    EncryptedSessionKey,
    /// Server asks for the client's public key.
    PublicKeyRequest,
    /// Reconnects to a pool.
    ConnectRunspacePool,
    /// Pool data after a connect.
    RunspacePoolInitData,
    /// Resets the runspace state.
    ResetRunspaceState,
    /// Changes the pool's maximum.
    SetMaxRunspaces,
    /// Changes the pool's minimum.
    SetMinRunspaces,
    /// Answer to a runspace availability request.
    RunspaceAvailability,
    /// The pool's state.
    RunspacePoolState,
    /// Creates a pipeline.
    CreatePipeline,
    /// Asks for the number of free runspaces.
    GetAvailableRunspaces,
    /// An event on the server.
    UserEvent,
    /// The server's private data (PSVersionTable...).
    ApplicationPrivateData,
    /// Asks for command metadata.
    GetCommandMetadata,
    /// A host method call for the pool.
    RunspacePoolHostCall,
    /// The answer to one.
    RunspacePoolHostResponse,
    /// One input object.
    PipelineInput,
    /// No more input.
    EndOfPipelineInput,
    /// One output object.
    PipelineOutput,
    /// An error record.
    ErrorRecord,
    /// The pipeline's state.
    PipelineState,
    /// A debug record.
    DebugRecord,
    /// A verbose record.
    VerboseRecord,
    /// A warning record.
    WarningRecord,
    /// A progress record.
    ProgressRecord,
    /// An information record (protocol 2.3).
    InformationRecord,
    /// A host method call for a pipeline.
    PipelineHostCall,
    /// The answer to one.
    PipelineHostResponse,
    /// A type this client does not know (kept so it can be skipped).
    Other(u32),
}

const TYPES: [(MessageType, u32); 31] = [
    (MessageType::SessionCapability, 0x0001_0002),
    (MessageType::InitRunspacePool, 0x0001_0004),
    (MessageType::PublicKey, 0x0001_0005),
    (MessageType::EncryptedSessionKey, 0x0001_0006),
    (MessageType::PublicKeyRequest, 0x0001_0007),
    (MessageType::ConnectRunspacePool, 0x0001_0008),
    (MessageType::RunspacePoolInitData, 0x0002_100B),
    (MessageType::ResetRunspaceState, 0x0002_100C),
    (MessageType::SetMaxRunspaces, 0x0002_1002),
    (MessageType::SetMinRunspaces, 0x0002_1003),
    (MessageType::RunspaceAvailability, 0x0002_1004),
    (MessageType::RunspacePoolState, 0x0002_1005),
    (MessageType::CreatePipeline, 0x0002_1006),
    (MessageType::GetAvailableRunspaces, 0x0002_1007),
    (MessageType::UserEvent, 0x0002_1008),
    (MessageType::ApplicationPrivateData, 0x0002_1009),
    (MessageType::GetCommandMetadata, 0x0002_100A),
    (MessageType::RunspacePoolHostCall, 0x0002_1100),
    (MessageType::RunspacePoolHostResponse, 0x0002_1101),
    (MessageType::PipelineInput, 0x0004_1002),
    (MessageType::EndOfPipelineInput, 0x0004_1003),
    (MessageType::PipelineOutput, 0x0004_1004),
    (MessageType::ErrorRecord, 0x0004_1005),
    (MessageType::PipelineState, 0x0004_1006),
    (MessageType::DebugRecord, 0x0004_1007),
    (MessageType::VerboseRecord, 0x0004_1008),
    (MessageType::WarningRecord, 0x0004_1009),
    (MessageType::ProgressRecord, 0x0004_1010),
    (MessageType::InformationRecord, 0x0004_1011),
    (MessageType::PipelineHostCall, 0x0004_1100),
    (MessageType::PipelineHostResponse, 0x0004_1101),
];

impl MessageType {
    /// The wire value.
    pub fn code(self) -> u32 {
        if let MessageType::Other(c) = self {
            return c;
        }
        TYPES
            .iter()
            .find(|(t, _)| *t == self)
            .map(|(_, c)| *c)
            .unwrap_or(0)
    }

    /// The type of a wire value.
    pub fn from_code(code: u32) -> Self {
        TYPES
            .iter()
            .find(|(_, c)| *c == code)
            .map(|(t, _)| *t)
            .unwrap_or(MessageType::Other(code))
    }
}

/// One message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Who it is for.
    pub destination: Destination,
    /// What it is.
    pub message_type: MessageType,
    /// The RunspacePool id.
    pub rpid: Uuid,
    /// The pipeline id (nil for pool messages).
    pub pid: Uuid,
    /// The CLIXML data, without the byte-order mark.
    pub data: String,
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

impl Message {
    /// The message as it travels (data without a BOM, as Windows' client sends it).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.data.len());
        out.extend_from_slice(&self.destination.code().to_le_bytes());
        out.extend_from_slice(&self.message_type.code().to_le_bytes());
        out.extend_from_slice(&self.rpid.to_bytes_le());
        out.extend_from_slice(&self.pid.to_bytes_le());
        out.extend_from_slice(self.data.as_bytes());
        out
    }

    /// Reads a reassembled message.
    pub fn decode(bytes: &[u8]) -> Result<Message, Error> {
        if bytes.len() < HEADER_LEN {
            return Err(Error::Message(format!(
                "{} bytes, shorter than a message header",
                bytes.len()
            )));
        }
        let le32 = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        let destination = match le32(&bytes[0..4]) {
            1 => Destination::Client,
            2 => Destination::Server,
            d => return Err(Error::Message(format!("unknown destination {d}"))),
        };
        let message_type = MessageType::from_code(le32(&bytes[4..8]));
        let guid = |b: &[u8]| {
            let mut a = [0u8; 16];
            a.copy_from_slice(b);
            Uuid::from_bytes_le(a)
        };
        let rpid = guid(&bytes[8..24]);
        let pid = guid(&bytes[24..40]);
        let mut data = &bytes[HEADER_LEN..];
        if data.starts_with(BOM) {
            data = &data[BOM.len()..];
        }
        let data = std::str::from_utf8(data)
            .map_err(|e| Error::Message(format!("the data is not UTF-8: {e}")))?
            .to_string();
        Ok(Message {
            destination,
            message_type,
            rpid,
            pid,
            data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_travel_in_dotnet_byte_order() {
        let rpid = Uuid::parse_str("4CEFBA69-02AD-4A95-ACC0-091A5794E3D2").unwrap();
        let m = Message {
            destination: Destination::Server,
            message_type: MessageType::SessionCapability,
            rpid,
            pid: Uuid::nil(),
            data: "<Obj/>".into(),
        };
        let b = m.encode();
        // Destination 2, type 0x00010002, then the GUID as .NET's Guid.ToByteArray writes it.
        assert_eq!(&b[0..12], &[2, 0, 0, 0, 2, 0, 1, 0, 0x69, 0xBA, 0xEF, 0x4C]);
        assert_eq!(Message::decode(&b).unwrap(), m);
    }
}
