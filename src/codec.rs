//! Decompression of archived files, for every compression barman-cloud
//! writes, with a cap on the output so a hostile object cannot exhaust memory.

use std::io::Read;

use crate::catalog::names::Compression;

/// Why a file could not be decompressed.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The stream is corrupt or not in the format its suffix says.
    #[error("not valid {compression} data: {source}")]
    Corrupt {
        /// The expected format.
        compression: Compression,
        /// The decoder's error.
        source: std::io::Error,
    },
    /// The output would exceed the cap.
    #[error("decompresses to more than {limit} bytes")]
    TooLarge {
        /// The cap.
        limit: u64,
    },
}

/// A reader that decompresses `input` according to `compression`.
pub fn reader<'a, R: Read + 'a>(
    input: R,
    compression: Compression,
) -> Result<Box<dyn Read + 'a>, std::io::Error> {
    Ok(match compression {
        Compression::None => Box::new(input),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(input)),
        Compression::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(input)),
        Compression::Snappy => Box::new(snap::read::FrameDecoder::new(input)),
        Compression::Xz => Box::new(liblzma::read::XzDecoder::new_multi_decoder(input)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(input)?),
        Compression::Lz4 => Box::new(lz4_flex::frame::FrameDecoder::new(input)),
    })
}

/// Decompresses `data`, refusing output longer than `limit` bytes.
pub fn decompress(
    data: &[u8],
    compression: Compression,
    limit: u64,
) -> Result<Vec<u8>, CodecError> {
    let corrupt = |source| CodecError::Corrupt {
        compression,
        source,
    };
    let r = reader(data, compression).map_err(corrupt)?;
    let mut out = Vec::new();
    r.take(limit + 1).read_to_end(&mut out).map_err(corrupt)?;
    if out.len() as u64 > limit {
        return Err(CodecError::TooLarge { limit });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn compress(data: &[u8], c: Compression) -> Vec<u8> {
        match c {
            Compression::None => data.to_vec(),
            Compression::Gzip => {
                let mut e =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            Compression::Bzip2 => {
                let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            Compression::Snappy => {
                let mut e = snap::write::FrameEncoder::new(Vec::new());
                e.write_all(data).unwrap();
                e.into_inner().unwrap()
            }
            Compression::Xz => {
                let mut e = liblzma::write::XzEncoder::new(Vec::new(), 6);
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            Compression::Zstd => zstd::encode_all(data, 3).unwrap(),
            Compression::Lz4 => {
                let mut e = lz4_flex::frame::FrameEncoder::new(Vec::new());
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
        }
    }

    #[test]
    fn every_compression_round_trips() {
        let data = b"1\t0/5A0000A0\tno recovery target specified\n".repeat(20);
        for c in Compression::ALL {
            let packed = compress(&data, c);
            assert_eq!(decompress(&packed, c, 1 << 20).unwrap(), data, "{c}");
        }
    }

    #[test]
    fn caps_and_corruption() {
        let data = vec![0u8; 100_000];
        let packed = compress(&data, Compression::Gzip);
        assert!(matches!(
            decompress(&packed, Compression::Gzip, 1000),
            Err(CodecError::TooLarge { limit: 1000 })
        ));
        for c in Compression::ALL.into_iter().skip(1) {
            assert!(
                decompress(b"definitely not compressed", c, 1000).is_err(),
                "{c}"
            );
        }
    }
}
