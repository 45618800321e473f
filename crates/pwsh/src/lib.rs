//! PowerShell literals, the stdin script runner, and CLIXML decoding.
