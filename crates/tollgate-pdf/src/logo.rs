//! The issuer's logo, drawn at the top of invoices and credit notes: PNG or JPEG bytes the
//! operator uploaded, bounded in size and checked once when they are accepted (decoded by
//! krilla, pure Rust; nothing is ever fetched).

use std::sync::Arc;

use krilla::image::Image;

use crate::PdfError;

/// The largest logo accepted, in bytes.
pub const MAX_LOGO_BYTES: usize = 256 * 1024;

/// A logo's image format, told by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogoFormat {
    Png,
    Jpeg,
}

/// Why bytes are not a logo.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LogoError {
    #[error("a logo is at most {max} bytes, this one is {size}")]
    TooLarge { size: usize, max: usize },
    #[error("a logo is a PNG or JPEG image")]
    NotPngOrJpeg,
    #[error("the image cannot be read: {0}")]
    Unreadable(String),
}

/// A checked PNG or JPEG image with its size in pixels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logo {
    bytes: Arc<Vec<u8>>,
    format: LogoFormat,
    width: u32,
    height: u32,
}

impl Logo {
    /// Checks `bytes`: at most [`MAX_LOGO_BYTES`], a PNG or JPEG whose pixels decode.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Logo, LogoError> {
        if bytes.len() > MAX_LOGO_BYTES {
            return Err(LogoError::TooLarge {
                size: bytes.len(),
                max: MAX_LOGO_BYTES,
            });
        }
        let format = if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            LogoFormat::Png
        } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            LogoFormat::Jpeg
        } else {
            return Err(LogoError::NotPngOrJpeg);
        };
        let mut logo = Logo {
            bytes: Arc::new(bytes),
            format,
            width: 0,
            height: 0,
        };
        let image = logo
            .image()
            .map_err(|e| LogoError::Unreadable(e.to_string()))?;
        (logo.width, logo.height) = image.size();
        if logo.width == 0 || logo.height == 0 {
            return Err(LogoError::Unreadable("the image has no pixels".into()));
        }
        // krilla decodes the pixels only when a document is written: write one, so that a
        // broken image is refused now rather than failing every invoice later.
        crate::render::check_image(&logo).map_err(|e| LogoError::Unreadable(e.to_string()))?;
        Ok(logo)
    }

    pub fn format(&self) -> LogoFormat {
        self.format
    }

    /// Width and height in pixels.
    pub fn pixels(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// The size it is drawn at, in points: its aspect ratio kept, within `max_w` by `max_h`.
    pub fn fit(&self, max_w: f32, max_h: f32) -> (f32, f32) {
        let (w, h) = (self.width as f32, self.height as f32);
        let scale = (max_w / w).min(max_h / h);
        (w * scale, h * scale)
    }

    pub(crate) fn image(&self) -> Result<Image, PdfError> {
        let data = krilla::Data::from(Arc::clone(&self.bytes));
        match self.format {
            LogoFormat::Png => Image::from_png(data, true),
            LogoFormat::Jpeg => Image::from_jpeg(data, true),
        }
        .map_err(PdfError::Pdf)
    }
}
