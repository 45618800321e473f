//! NTLMv2 (MS-NLMP): initiator and acceptor, signing and sealing.
