//! SPDY/3.1 framing, the server's half, as far as Kubernetes' streaming protocols use it: kubectl
//! 1.27–1.29 runs exec, attach and port-forward over it, later versions fall back to it, and
//! kubectl 1.31+ tunnels it inside a WebSocket for port-forward. The client opens streams
//! (SYN_STREAM with a `streamtype` header); the server answers each with an empty SYN_REPLY, then
//! both sides send DATA frames; FIN half-closes a stream; PINGs are echoed.
//!
//! Header blocks are zlib-compressed with SPDY's dictionary, one compression context per
//! direction for the whole connection, so frames must be written in the order they are framed:
//! [`FrameWriter`] is owned by one writer task.

use std::sync::LazyLock;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

const VERSION: u16 = 3;
const FLAG_FIN: u8 = 0x01;
const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const PING: u16 = 6;
const GOAWAY: u16 = 7;
/// The largest frame accepted; Kubernetes' peers send 32 KiB at most.
const MAX_FRAME: usize = 1 << 20;

/// RST_STREAM status: the stream was refused or cancelled.
pub const CANCEL: u32 = 5;

/// The header names the SPDY/3 specification lists first in its compression dictionary; each goes
/// into the dictionary as a 32-bit big-endian length and the name.
const DICTIONARY_WORDS: &[&str] = &[
    "options",
    "head",
    "post",
    "put",
    "delete",
    "trace",
    "accept",
    "accept-charset",
    "accept-encoding",
    "accept-language",
    "accept-ranges",
    "age",
    "allow",
    "authorization",
    "cache-control",
    "connection",
    "content-base",
    "content-encoding",
    "content-language",
    "content-length",
    "content-location",
    "content-md5",
    "content-range",
    "content-type",
    "date",
    "etag",
    "expect",
    "expires",
    "from",
    "host",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "last-modified",
    "location",
    "max-forwards",
    "pragma",
    "proxy-authenticate",
    "proxy-authorization",
    "range",
    "referer",
    "retry-after",
    "server",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "vary",
    "via",
    "warning",
    "www-authenticate",
    "method",
    "get",
    "status",
    "200 OK",
    "version",
    "HTTP/1.1",
    "url",
    "public",
    "set-cookie",
    "keep-alive",
    "origin",
];

/// The specification's dictionary continues with these common values, unprefixed.
const DICTIONARY_TAIL: &str = concat!(
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505",
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request",
    "401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented",
    "503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 ",
    "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,",
    "application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age=",
    "gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.",
);

static DICTIONARY: LazyLock<Vec<u8>> = LazyLock::new(|| {
    let mut d = Vec::with_capacity(1423);
    for word in DICTIONARY_WORDS {
        d.extend_from_slice(&(word.len() as u32).to_be_bytes());
        d.extend_from_slice(word.as_bytes());
    }
    d.extend_from_slice(DICTIONARY_TAIL.as_bytes());
    d
});

/// A frame from the client.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    SynStream {
        stream_id: u32,
        headers: Vec<(String, String)>,
        fin: bool,
    },
    Data {
        stream_id: u32,
        data: Vec<u8>,
        fin: bool,
    },
    RstStream {
        stream_id: u32,
    },
    Ping(u32),
    GoAway,
    /// SETTINGS, WINDOW_UPDATE, HEADERS and the rest: nothing a server must act on (Kubernetes'
    /// SPDY peers do no flow control).
    Ignored,
}

fn invalid(message: impl Into<String>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message.into())
}

/// Reads frames from the client.
pub struct FrameReader<R> {
    io: R,
    inflate: Decompress,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub fn new(io: R) -> Self {
        FrameReader {
            io,
            inflate: Decompress::new(true),
        }
    }

    /// The next frame, or None when the client closed the connection.
    pub async fn next(&mut self) -> std::io::Result<Option<Frame>> {
        let mut head = [0u8; 8];
        match self.io.read_exact(&mut head).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e),
        }
        let flags = head[4];
        let length = u32::from_be_bytes([0, head[5], head[6], head[7]]) as usize;
        if length > MAX_FRAME {
            return Err(invalid(format!("a frame of {length} bytes")));
        }
        let mut payload = vec![0u8; length];
        self.io.read_exact(&mut payload).await?;
        let word = |at: usize| -> std::io::Result<u32> {
            payload
                .get(at..at + 4)
                .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
                .ok_or_else(|| invalid("a truncated frame"))
        };
        if head[0] & 0x80 == 0 {
            let stream_id = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
            return Ok(Some(Frame::Data {
                stream_id,
                data: payload,
                fin: flags & FLAG_FIN != 0,
            }));
        }
        let version = u16::from_be_bytes([head[0], head[1]]) & 0x7fff;
        if version != VERSION {
            return Err(invalid(format!("SPDY version {version}")));
        }
        let frame = match u16::from_be_bytes([head[2], head[3]]) {
            SYN_STREAM => {
                let stream_id = word(0)? & 0x7fff_ffff;
                let block = payload
                    .get(10..)
                    .ok_or_else(|| invalid("a short SYN_STREAM"))?;
                Frame::SynStream {
                    stream_id,
                    headers: self.headers(block)?,
                    fin: flags & FLAG_FIN != 0,
                }
            }
            RST_STREAM => Frame::RstStream {
                stream_id: word(0)? & 0x7fff_ffff,
            },
            PING => Frame::Ping(word(0)?),
            GOAWAY => Frame::GoAway,
            _ => Frame::Ignored,
        };
        Ok(Some(frame))
    }

    /// Decompresses and parses a header block (names lowercased, as SPDY requires).
    fn headers(&mut self, block: &[u8]) -> std::io::Result<Vec<(String, String)>> {
        let mut out = Vec::with_capacity(block.len() * 4 + 64);
        let mut input = block;
        loop {
            let before = self.inflate.total_in();
            let status = self
                .inflate
                .decompress_vec(input, &mut out, FlushDecompress::Sync);
            if let Err(err) = status {
                if err.needs_dictionary().is_none() {
                    return Err(invalid(format!("header block: {err}")));
                }
                self.inflate
                    .set_dictionary(&DICTIONARY)
                    .map_err(|e| invalid(e.to_string()))?;
            }
            input = &input[(self.inflate.total_in() - before) as usize..];
            if input.is_empty() && out.len() < out.capacity() {
                break;
            }
            out.reserve(out.capacity().max(1024));
        }
        parse_header_block(&out)
    }
}

fn parse_header_block(mut b: &[u8]) -> std::io::Result<Vec<(String, String)>> {
    let mut take = |n: usize| -> std::io::Result<&[u8]> {
        if b.len() < n {
            return Err(invalid("a truncated header block"));
        }
        let (head, rest) = b.split_at(n);
        b = rest;
        Ok(head)
    };
    let number =
        |bytes: &[u8]| u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
    let count = number(take(4)?);
    let mut headers = Vec::with_capacity(count.min(64));
    for _ in 0..count {
        let n = number(take(4)?);
        let name = String::from_utf8_lossy(take(n)?).to_ascii_lowercase();
        let n = number(take(4)?);
        let value = String::from_utf8_lossy(take(n)?).into_owned();
        headers.push((name, value));
    }
    Ok(headers)
}

/// Writes frames to the client.
pub struct FrameWriter<W> {
    io: W,
    deflate: Compress,
}

impl<W: AsyncWrite + Unpin> FrameWriter<W> {
    pub fn new(io: W) -> Self {
        let mut deflate = Compress::new(Compression::default(), true);
        // A fresh context accepts a dictionary; it cannot fail here.
        let _ = deflate.set_dictionary(&DICTIONARY);
        FrameWriter { io, deflate }
    }

    async fn control(&mut self, kind: u16, flags: u8, payload: &[u8]) -> std::io::Result<()> {
        let len = payload.len() as u32;
        let mut frame = Vec::with_capacity(8 + payload.len());
        frame.extend_from_slice(&(0x8000 | VERSION).to_be_bytes());
        frame.extend_from_slice(&kind.to_be_bytes());
        frame.push(flags);
        frame.extend_from_slice(&len.to_be_bytes()[1..]);
        frame.extend_from_slice(payload);
        self.io.write_all(&frame).await
    }

    /// Accepts a stream the client opened: an empty header block.
    pub async fn syn_reply(&mut self, stream_id: u32) -> std::io::Result<()> {
        let block = self.compress(&0u32.to_be_bytes())?;
        let mut payload = stream_id.to_be_bytes().to_vec();
        payload.extend_from_slice(&block);
        self.control(SYN_REPLY, 0, &payload).await
    }

    pub async fn data(&mut self, stream_id: u32, data: &[u8], fin: bool) -> std::io::Result<()> {
        let mut frame = Vec::with_capacity(8 + data.len());
        frame.extend_from_slice(&(stream_id & 0x7fff_ffff).to_be_bytes());
        frame.push(if fin { FLAG_FIN } else { 0 });
        frame.extend_from_slice(&(data.len() as u32).to_be_bytes()[1..]);
        frame.extend_from_slice(data);
        self.io.write_all(&frame).await
    }

    pub async fn rst_stream(&mut self, stream_id: u32, status: u32) -> std::io::Result<()> {
        let mut payload = stream_id.to_be_bytes().to_vec();
        payload.extend_from_slice(&status.to_be_bytes());
        self.control(RST_STREAM, 0, &payload).await
    }

    pub async fn ping(&mut self, id: u32) -> std::io::Result<()> {
        self.control(PING, 0, &id.to_be_bytes()).await
    }

    /// Says no more streams will be accepted (the last the client opened is `last_stream`).
    pub async fn go_away(&mut self, last_stream: u32) -> std::io::Result<()> {
        let mut payload = last_stream.to_be_bytes().to_vec();
        payload.extend_from_slice(&0u32.to_be_bytes());
        self.control(GOAWAY, 0, &payload).await?;
        self.io.flush().await
    }

    pub async fn flush(&mut self) -> std::io::Result<()> {
        self.io.flush().await
    }

    fn compress(&mut self, input: &[u8]) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(input.len() + 64);
        let mut rest = input;
        loop {
            let before = self.deflate.total_in();
            self.deflate
                .compress_vec(rest, &mut out, FlushCompress::Sync)
                .map_err(|e| invalid(e.to_string()))?;
            rest = &rest[(self.deflate.total_in() - before) as usize..];
            if rest.is_empty() && out.len() < out.capacity() {
                return Ok(out);
            }
            out.reserve(out.capacity().max(64));
        }
    }

    /// Compresses a header block (used by tests acting as the client).
    #[cfg(test)]
    fn header_block(&mut self, headers: &[(&str, &str)]) -> Vec<u8> {
        let mut raw = (headers.len() as u32).to_be_bytes().to_vec();
        for (name, value) in headers {
            for s in [name, value] {
                raw.extend_from_slice(&(s.len() as u32).to_be_bytes());
                raw.extend_from_slice(s.as_bytes());
            }
        }
        self.compress(&raw).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dictionary_is_the_specifications() {
        assert_eq!(DICTIONARY.len(), 1423);
        // Its Adler-32, the dictionary id a zlib stream names.
        let mut c = Compress::new(Compression::default(), true);
        assert_eq!(c.set_dictionary(&DICTIONARY).unwrap(), 0xe3c6a7c2);
    }

    #[tokio::test]
    async fn frames_round_trip_through_both_halves() {
        let (client, server) = tokio::io::duplex(1 << 16);
        let mut client_writer = FrameWriter::new(client);
        // A client's SYN_STREAM, framed by hand with the writer's compressor.
        for (id, kind) in [(1u32, "error"), (3, "stdout")] {
            let block = client_writer.header_block(&[("streamType", kind), ("port", "8080")]);
            let mut payload = id.to_be_bytes().to_vec();
            payload.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
            payload.extend_from_slice(&block);
            client_writer
                .control(SYN_STREAM, 0, &payload)
                .await
                .unwrap();
        }
        client_writer.data(3, b"hello", true).await.unwrap();
        client_writer.ping(7).await.unwrap();
        let mut reader = FrameReader::new(server);
        for (id, kind) in [(1u32, "error"), (3, "stdout")] {
            assert_eq!(
                reader.next().await.unwrap(),
                Some(Frame::SynStream {
                    stream_id: id,
                    headers: vec![
                        ("streamtype".into(), kind.into()),
                        ("port".into(), "8080".into())
                    ],
                    fin: false,
                })
            );
        }
        assert_eq!(
            reader.next().await.unwrap(),
            Some(Frame::Data {
                stream_id: 3,
                data: b"hello".to_vec(),
                fin: true
            })
        );
        assert_eq!(reader.next().await.unwrap(), Some(Frame::Ping(7)));
        drop(client_writer);
        assert_eq!(reader.next().await.unwrap(), None);
    }
}
