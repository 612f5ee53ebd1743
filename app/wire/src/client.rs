//! A blocking client for the helper's Unix socket.

use crate::{ClientMessage, FrameDecoder, HelperInfo, HelperMessage, Preamble, WireError};
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where `microscoped` listens unless told otherwise (`--socket`).
pub const DEFAULT_SOCKET_PATH: &str = "/run/microscope/microscoped.sock";

/// How long the handshake may take before the helper is declared unresponsive.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why talking to the helper failed, phrased for the person at the keyboard.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing listens at the socket path.
    #[error(
        "no Microscope helper is running at {path} ({source}); start it with \
         `sudo microscoped` or `cargo xtask run`"
    )]
    NotRunning {
        /// Socket path tried.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The socket exists but this user may not open it.
    #[error(
        "permission denied on {path}: only root and members of the helper's group \
         (default `microscope`) may connect; ask an administrator to run \
         `sudo usermod -aG microscope $USER`, then log in again"
    )]
    PermissionDenied {
        /// Socket path tried.
        path: PathBuf,
    },
    /// The helper refused the connection at the handshake, or a request
    /// (an `Enable`, a probe list); its sentence says which and why.
    #[error("the helper refused: {0}")]
    Refused(String),
    /// The helper does not speak our protocol or version.
    #[error("cannot talk to the helper at {path}: {source}")]
    Protocol {
        /// Socket path.
        path: PathBuf,
        /// The mismatch.
        #[source]
        source: WireError,
    },
    /// The helper closed the connection.
    #[error("the helper closed the connection")]
    Closed,
    /// The helper did not answer in time.
    #[error("the helper did not answer within {0:?}; is it stuck?")]
    Timeout(Duration),
    /// Any other socket error.
    #[error("socket error talking to the helper: {0}")]
    Io(#[from] io::Error),
    /// A frame could not be decoded.
    #[error("bad data from the helper: {0}")]
    Wire(#[from] WireError),
}

/// A connected, handshaken client.
#[derive(Debug)]
pub struct Connection {
    stream: UnixStream,
    decoder: FrameDecoder<HelperMessage>,
    hello: HelperInfo,
    read_buf: Box<[u8]>,
}

impl Connection {
    /// Connects to the helper at `path` and performs the handshake.
    pub fn connect(path: impl AsRef<Path>) -> Result<Self, ClientError> {
        let path = path.as_ref();
        let stream = UnixStream::connect(path).map_err(|source| match source.kind() {
            io::ErrorKind::PermissionDenied => ClientError::PermissionDenied {
                path: path.to_owned(),
            },
            _ => ClientError::NotRunning {
                path: path.to_owned(),
                source,
            },
        })?;
        Self::handshake(stream, path)
    }

    fn handshake(mut stream: UnixStream, path: &Path) -> Result<Self, ClientError> {
        stream.set_read_timeout(Some(HANDSHAKE_TIMEOUT))?;
        stream.write_all(&Preamble::current().to_bytes())?;
        let mut preamble = [0; Preamble::LEN];
        read_exact(&mut stream, &mut preamble)?;
        let version_check = Preamble::check(preamble);
        // The helper sends one frame after its preamble: `Hello`, or an
        // `Error` explaining a refusal. Read it even on a version mismatch,
        // but trust the mismatch over whatever that frame decodes to.
        let mut decoder = FrameDecoder::new();
        let mut read_buf = vec![0; 256 * 1024].into_boxed_slice();
        let first = recv_from(&mut stream, &mut decoder, &mut read_buf);
        if let Err(source) = version_check {
            return Err(ClientError::Protocol {
                path: path.to_owned(),
                source,
            });
        }
        let hello = match first? {
            HelperMessage::Hello(info) => info,
            HelperMessage::Error { message } => return Err(ClientError::Refused(message)),
            other => {
                return Err(ClientError::Refused(format!(
                    "expected a hello, got {other:?}"
                )));
            }
        };
        stream.set_read_timeout(None)?;
        Ok(Self {
            stream,
            decoder,
            hello,
            read_buf,
        })
    }

    /// What the helper said about itself and the kernel.
    pub fn hello(&self) -> &HelperInfo {
        &self.hello
    }

    /// Sends one message.
    pub fn send(&mut self, message: &ClientMessage) -> Result<(), ClientError> {
        let mut frame = Vec::new();
        crate::encode_frame(message, &mut frame)?;
        self.stream.write_all(&frame)?;
        Ok(())
    }

    /// Waits for the next message (forever unless a timeout is set).
    pub fn recv(&mut self) -> Result<HelperMessage, ClientError> {
        recv_from(&mut self.stream, &mut self.decoder, &mut self.read_buf)
    }

    /// Asks for the probe catalogue and waits for it, skipping any streamed
    /// messages that arrive first. A helper error becomes [`ClientError::Refused`].
    pub fn list_probes(&mut self) -> Result<Vec<crate::ProbeInfo>, ClientError> {
        self.send(&ClientMessage::ListProbes)?;
        loop {
            match self.recv()? {
                HelperMessage::Probes(probes) => return Ok(probes),
                HelperMessage::Error { message } => return Err(ClientError::Refused(message)),
                _ => {}
            }
        }
    }

    /// Enables `probe` and waits for the helper to confirm it. Returns every
    /// message received meanwhile, the confirmation last, so a caller that
    /// records or counts the stream misses nothing. A helper error becomes
    /// [`ClientError::Refused`].
    pub fn enable_probe(&mut self, probe: &str) -> Result<Vec<HelperMessage>, ClientError> {
        self.send(&ClientMessage::Enable {
            probe: probe.to_owned(),
        })?;
        let mut received = Vec::new();
        loop {
            let message = self.recv()?;
            let confirmed = matches!(
                &message,
                HelperMessage::ProbeState { probe: p, enabled: true } if p == probe
            );
            if let HelperMessage::Error { message } = message {
                return Err(ClientError::Refused(message));
            }
            received.push(message);
            if confirmed {
                return Ok(received);
            }
        }
    }

    /// Sets how long [`recv`](Self::recv) waits; `None` waits forever.
    pub fn set_recv_timeout(&self, timeout: Option<Duration>) -> Result<(), ClientError> {
        self.stream.set_read_timeout(timeout)?;
        Ok(())
    }

    /// A second handle on the same socket, for a thread that only writes.
    pub fn writer(&self) -> Result<Writer, ClientError> {
        Ok(Writer {
            stream: self.stream.try_clone()?,
        })
    }

    /// Closes both directions; a thread blocked in `recv` wakes with `Closed`.
    pub fn shutdown(&self) {
        // Already closed is fine.
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }
}

/// The write half of a [`Connection`], for sending commands from another thread.
#[derive(Debug)]
pub struct Writer {
    stream: UnixStream,
}

impl Writer {
    /// Sends one message.
    pub fn send(&mut self, message: &ClientMessage) -> Result<(), ClientError> {
        let mut frame = Vec::new();
        crate::encode_frame(message, &mut frame)?;
        self.stream.write_all(&frame)?;
        Ok(())
    }

    /// Closes both directions of the socket.
    pub fn shutdown(&self) {
        // Already closed is fine.
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }
}

fn read_exact(stream: &mut UnixStream, buf: &mut [u8]) -> Result<(), ClientError> {
    match stream.read_exact(buf) {
        Ok(()) => Ok(()),
        Err(err) if is_timeout(&err) => Err(ClientError::Timeout(HANDSHAKE_TIMEOUT)),
        Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => Err(ClientError::Closed),
        Err(err) => Err(err.into()),
    }
}

fn is_timeout(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

fn recv_from(
    stream: &mut UnixStream,
    decoder: &mut FrameDecoder<HelperMessage>,
    read_buf: &mut [u8],
) -> Result<HelperMessage, ClientError> {
    loop {
        if let Some(message) = decoder.next_message()? {
            return Ok(message);
        }
        let n = match stream.read(read_buf) {
            Ok(n) => n,
            Err(err) if is_timeout(&err) => {
                let timeout = stream.read_timeout().ok().flatten().unwrap_or_default();
                return Err(ClientError::Timeout(timeout));
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err.into()),
        };
        if n == 0 {
            decoder.finish()?;
            return Err(ClientError::Closed);
        }
        decoder.push(&read_buf[..n]);
    }
}
