//! TWS socket framing for the fake: the `API\0` handshake and `[u32 length][body]` frames.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Protobuf message ids are sent as `id + 200`.
pub const PROTOBUF_OFFSET: i32 = 200;
/// Largest frame the fake accepts (IB's own limit).
pub const MAX_FRAME: usize = 0x00FF_FFFF;

/// Reads one length-prefixed frame; `Ok(None)` on a clean EOF before the length.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> std::io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let n = u32::from_be_bytes(len) as usize;
    if n > MAX_FRAME {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("frame of {n} bytes exceeds the limit"),
        ));
    }
    let mut buf = vec![0u8; n];
    r.read_exact(&mut buf).await?;
    Ok(Some(buf))
}

/// Writes one frame with its length prefix.
pub async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, body: &[u8]) -> std::io::Result<()> {
    let len = u32::try_from(body.len())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "frame too long"))?;
    let mut out = Vec::with_capacity(4 + body.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(body);
    w.write_all(&out).await
}

/// Reads the client's `API\0` prefix and its `v<min>..<max>` version frame.
pub async fn read_handshake<R: AsyncRead + Unpin>(r: &mut R) -> std::io::Result<(i32, i32)> {
    let mut prefix = [0u8; 4];
    r.read_exact(&mut prefix).await?;
    if &prefix != b"API\0" {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "missing API\\0 prefix",
        ));
    }
    let frame = read_frame(r)
        .await?
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "no version"))?;
    let text = String::from_utf8_lossy(&frame);
    parse_version_range(&text).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("bad version range {text:?}"),
        )
    })
}

/// Parses `v213..226`.
pub fn parse_version_range(s: &str) -> Option<(i32, i32)> {
    let rest = s.strip_prefix('v')?;
    let (lo, hi) = rest.split_once("..")?;
    Some((lo.trim().parse().ok()?, hi.trim().parse().ok()?))
}

/// The handshake reply: `<server version>\0<time>\0` as one frame.
pub fn handshake_reply(server_version: i32, time: &str) -> Vec<u8> {
    format!("{server_version}\0{time}\0").into_bytes()
}

/// Splits a frame body into the message id (offset removed) and the protobuf payload.
pub fn split_body(body: &[u8]) -> Option<(i32, &[u8])> {
    let (head, rest) = body.split_first_chunk::<4>()?;
    let raw = i32::from_be_bytes(*head);
    let id = if raw > PROTOBUF_OFFSET {
        raw - PROTOBUF_OFFSET
    } else {
        raw
    };
    Some((id, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_range_parses() {
        assert_eq!(parse_version_range("v213..226"), Some((213, 226)));
        assert_eq!(parse_version_range("213..226"), None);
        assert_eq!(parse_version_range("vX..1"), None);
    }

    #[test]
    fn body_split_removes_offset() {
        let body = [0, 0, 0, 203, 1, 2];
        assert_eq!(split_body(&body), Some((3, &[1u8, 2][..])));
        assert_eq!(split_body(&[0, 1]), None);
    }

    #[tokio::test]
    async fn frame_round_trip() {
        let mut buf = Vec::new();
        write_frame(&mut buf, b"hello").await.unwrap();
        let mut r = &buf[..];
        assert_eq!(read_frame(&mut r).await.unwrap(), Some(b"hello".to_vec()));
        assert_eq!(read_frame(&mut r).await.unwrap(), None);
    }
}
