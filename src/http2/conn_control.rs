//! The connection-level frames that change how an HTTP/2 connection sends:
//! SETTINGS (the client's frame size, window and table size) and
//! WINDOW_UPDATE (both windows, bounded at 2^31-1).

use super::*;

impl H2Conn {
    pub(super) fn on_settings(
        &mut self,
        h: Head,
        p: &[u8],
        env: &mut Env<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), (Code, &'static str)> {
        let _ = env;
        if h.stream != 0 {
            return Err((Code::Protocol, "SETTINGS on a stream"));
        }
        if h.has(flag::ACK) {
            if !p.is_empty() {
                return Err((Code::FrameSize, "a SETTINGS acknowledgement with a payload"));
            }
            return Ok(());
        }
        if !p.len().is_multiple_of(6) {
            return Err((Code::FrameSize, "SETTINGS of a bad size"));
        }
        self.control(env.now)?;
        for pair in p.chunks_exact(6) {
            let id = u16::from_be_bytes([pair[0], pair[1]]);
            let v = u32::from_be_bytes([pair[2], pair[3], pair[4], pair[5]]);
            match id {
                setting::HEADER_TABLE_SIZE => self.enc.set_table_size(v as usize),
                setting::ENABLE_PUSH if v > 1 => {
                    return Err((Code::Protocol, "SETTINGS_ENABLE_PUSH other than 0 or 1"));
                }
                setting::INITIAL_WINDOW_SIZE => {
                    if v as i64 > frame::MAX_WINDOW {
                        return Err((Code::FlowControl, "SETTINGS_INITIAL_WINDOW_SIZE too large"));
                    }
                    let delta = v as i64 - self.peer_initial_window;
                    for s in &mut self.streams {
                        s.send_window += delta;
                        if s.send_window > frame::MAX_WINDOW {
                            return Err((Code::FlowControl, "a stream window past 2^31-1"));
                        }
                    }
                    self.peer_initial_window = v as i64;
                }
                setting::MAX_FRAME_SIZE => {
                    if !(frame::DEFAULT_MAX_FRAME..=(1 << 24) - 1).contains(&v) {
                        return Err((Code::Protocol, "SETTINGS_MAX_FRAME_SIZE out of range"));
                    }
                    self.peer_max_frame = v as usize;
                }
                _ => {}
            }
        }
        frame::settings_ack(out);
        Ok(())
    }

    pub(super) fn on_window_update(
        &mut self,
        h: Head,
        p: &[u8],
        env: &mut Env<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), (Code, &'static str)> {
        if p.len() != 4 {
            return Err((Code::FrameSize, "WINDOW_UPDATE of a bad size"));
        }
        let n = (u32::from_be_bytes([p[0], p[1], p[2], p[3]]) & 0x7fff_ffff) as i64;
        if h.stream == 0 {
            if n == 0 {
                return Err((Code::Protocol, "a WINDOW_UPDATE of 0"));
            }
            self.send_window += n;
            if self.send_window > frame::MAX_WINDOW {
                return Err((Code::FlowControl, "the connection window past 2^31-1"));
            }
            return Ok(());
        }
        if h.stream > self.last_stream {
            return Err((Code::Protocol, "WINDOW_UPDATE on an idle stream"));
        }
        let Some(i) = self.find(h.stream) else {
            return Ok(());
        };
        if n == 0 {
            self.reset(h.stream, Code::Protocol, env, out);
            return Ok(());
        }
        let s = &mut self.streams[i];
        s.send_window += n;
        if s.send_window > frame::MAX_WINDOW {
            self.reset(h.stream, Code::FlowControl, env, out);
        }
        Ok(())
    }
}
