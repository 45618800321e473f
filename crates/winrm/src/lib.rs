//! WS-Management shell (WinRS) client.
