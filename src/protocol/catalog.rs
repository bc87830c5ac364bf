//! Every line a line-protocol server sends, in two languages.
//!
//! `--lang en` (the default) words each message in English; `--lang zh`
//! reproduces the seed programs' strings byte for byte (`seed/transcript.txt`),
//! so a client written against the seed sees what it always saw. Messages the
//! seed never had (nickname and room validation, slow-consumer eviction, line
//! errors) are new in both languages.
//!
//! Contract: every message is returned complete with its terminating `\n`, and
//! the text a peer controls (`nick`, `room`, `text`) must already be one
//! sanitised line (see [`super::text::sanitize`]); the catalogue only formats.
//! One deliberate change from the seed: 08's `CLOSE_WRITE` confirmation ends
//! with `\n` like every other line (the seed relied on the FIN after it to
//! delimit it, which a line-framed client cannot see as a line end).

use std::fmt;

/// The language of a server's messages.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    /// English wording of each message.
    #[default]
    En,
    /// The seed's Chinese strings, byte for byte.
    Zh,
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Lang::En => "en",
            Lang::Zh => "zh",
        })
    }
}

/// Why a nickname or room name was refused.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum NameError {
    /// Empty, or longer than the limit.
    Length,
    /// Contains whitespace, a control character or a character reserved for
    /// server lines (`[`, `]`, `:` and `"`).
    Charset,
    /// Contains an invisible, blank-looking, bidi-control or other format
    /// character (see [`super::text::is_invisible`]).
    Invisible,
    /// Another user has it (compared after Unicode compatibility
    /// normalisation, case folding and the confusable skeleton, see
    /// [`super::text::name_key`]).
    Taken,
    /// The member's previous `/nick` is still being claimed from the other
    /// servers (chat across processes): one change at a time.
    Pending,
    /// It has the form of a default nickname (`user<n>`), which belongs to
    /// connection `n` only (the tutorial's chat server let anyone take any
    /// nickname, `user<n>` included, so whispers reached an impostor).
    Reserved,
}

/// Width of the rule under the chat's list headings (the seed's `'─'.repeat(30)`).
const RULE_WIDTH: usize = 30;

/// The messages of one language.
#[derive(Copy, Clone, Debug, Default)]
pub struct Catalog {
    /// The language.
    pub lang: Lang,
}

macro_rules! pick {
    ($self:ident, $en:expr, $zh:expr) => {
        match $self.lang {
            Lang::En => $en,
            Lang::Zh => $zh,
        }
    };
}

impl Catalog {
    /// The catalogue for `lang`.
    pub fn new(lang: Lang) -> Catalog {
        Catalog { lang }
    }

    // ----- shared by every line server -------------------------------------

    /// An overlong line: sent just before the connection is ended.
    pub fn line_too_long(&self, max: usize) -> String {
        pick!(
            self,
            format!("error: line longer than {max} bytes, closing\n"),
            format!("错误: 行长度超过 {max} 字节,连接关闭\n")
        )
    }

    /// A line that is not UTF-8 (the line is skipped; the connection goes on).
    pub fn invalid_utf8(&self) -> String {
        pick!(
            self,
            "error: line is not valid UTF-8, ignored\n".into(),
            "错误: 不是有效的 UTF-8 文本,已忽略\n".into()
        )
    }

    /// `/quit` of 02 and 03.
    pub fn goodbye(&self) -> String {
        pick!(self, "Goodbye!\n".into(), "再见!\n".into())
    }

    /// 02 and 08: a plain line echoed with the prefix.
    pub fn echo(&self, text: &str) -> String {
        pick!(self, format!("Echo: {text}\n"), format!("回显: {text}\n"))
    }

    // ----- 01: banner echo -------------------------------------------------

    /// 01: sent on accept.
    pub fn banner_welcome(&self) -> String {
        pick!(
            self,
            "Welcome to the TCP server!\n".into(),
            "欢迎连接到TCP服务器!\n".into()
        )
    }

    /// 01: one received line.
    pub fn banner_echo(&self, text: &str) -> String {
        pick!(
            self,
            format!("Server received: {text}\n"),
            format!("服务器收到: {text}\n")
        )
    }

    // ----- 02: command server ----------------------------------------------

    /// 02: sent on accept.
    pub fn command_welcome(&self, id: u64) -> String {
        pick!(
            self,
            format!("Welcome! Connection ID: {id}\n"),
            format!("欢迎连接! 连接ID: {id}\n")
        )
    }

    /// 02 `/info`: `json` is one line (the tutorial's reply was pretty-printed
    /// over several lines, so a line client could not tell where it ended).
    pub fn command_info(&self, json: &str) -> String {
        pick!(
            self,
            format!("Connection info: {json}\n"),
            format!("连接信息: {json}\n")
        )
    }

    /// `/stats` (not in the seed): the loop's metrics as one line of JSON.
    pub fn command_stats(&self, json: &str) -> String {
        pick!(
            self,
            format!("Loop stats: {json}\n"),
            format!("事件循环统计: {json}\n")
        )
    }

    /// 02 `/list`.
    pub fn command_list(&self, ids: &[u64]) -> String {
        let ids = ids
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        pick!(
            self,
            format!("Active connections: {ids}\n"),
            format!("活跃连接: {ids}\n")
        )
    }

    /// 02: a `/command` it does not know.
    pub fn command_unknown(&self, text: &str) -> String {
        pick!(
            self,
            format!("Unknown command: {text}\n"),
            format!("未知命令: {text}\n")
        )
    }

    /// 02: the idle timeout.
    pub fn command_timeout(&self) -> String {
        pick!(self, "Connection timed out\n".into(), "连接超时\n".into())
    }

    /// 02: graceful shutdown.
    pub fn command_shutdown(&self) -> String {
        pick!(
            self,
            "Server is shutting down\n".into(),
            "服务器即将关闭\n".into()
        )
    }

    // ----- 03: chat --------------------------------------------------------

    /// 03: the box banner sent on accept, then an empty line.
    pub fn chat_welcome(&self, id: u64) -> String {
        let (title, id_line, help) = match self.lang {
            // Each English line is 34 columns between the borders.
            Lang::En => (
                "  Welcome to the TCP chat server  ".to_string(),
                format!(" Your ID: {id:<23} "),
                " Type /help for the commands      ".to_string(),
            ),
            Lang::Zh => (
                "       欢迎来到TCP聊天服务器       ".to_string(),
                format!(" 您的ID: {id:<24} "),
                " 输入 /help 查看可用命令          ".to_string(),
            ),
        };
        format!(
            "\n╔══════════════════════════════════╗\n║{title}║\n║                                  ║\n║{id_line}║\n║{help}║\n╚══════════════════════════════════╝\n\n"
        )
    }

    /// 03 `/help`.
    pub fn chat_help(&self) -> String {
        pick!(
            self,
            "\nCommands:\n/help          - show this help\n/nick <name>   - change your nickname\n/list          - list online users\n/rooms         - list rooms\n/join <room>   - join a room\n/leave         - leave the current room\n/whisper <user> <message> - private message (also /w)\n/quit          - leave the server\n\n".into(),
            "\n可用命令:\n/help          - 显示帮助信息\n/nick <名称>   - 更改昵称\n/list          - 显示在线用户\n/rooms         - 显示房间列表\n/join <房间>   - 加入房间\n/leave         - 离开当前房间\n/whisper <用户> <消息> - 私聊\n/quit          - 退出服务器\n\n".into()
        )
    }

    /// 03 `/nick`: to the user who changed.
    pub fn nick_changed(&self, new: &str) -> String {
        pick!(
            self,
            format!("Nickname changed to: {new}\n"),
            format!("昵称已更改为: {new}\n")
        )
    }

    /// 03 `/nick`: to the others.
    pub fn nick_notice(&self, old: &str, new: &str) -> String {
        pick!(
            self,
            format!("{old} is now known as {new}\n"),
            format!("{old} 更改昵称为 {new}\n")
        )
    }

    /// 03 `/nick` without an argument.
    pub fn nick_usage(&self) -> String {
        pick!(
            self,
            "Usage: /nick <new nickname>\n".into(),
            "用法: /nick <新昵称>\n".into()
        )
    }

    fn name_reason(&self, e: NameError, max: usize) -> String {
        match (self.lang, e) {
            (Lang::En, NameError::Length) => format!("must be 1 to {max} characters"),
            (Lang::En, NameError::Charset) => {
                "must not contain spaces, control characters or [ ] : \"".into()
            }
            (Lang::En, NameError::Invisible) => {
                "must not contain invisible, blank-looking or direction-changing characters".into()
            }
            (Lang::En, NameError::Taken) => "already in use".into(),
            (Lang::En, NameError::Reserved) => "reserved".into(),
            (Lang::En, NameError::Pending) => "your previous change is still pending".into(),
            (Lang::Zh, NameError::Length) => format!("长度须为 1 到 {max} 个字符"),
            (Lang::Zh, NameError::Charset) => "不能包含空白、控制字符或 [ ] : \"".into(),
            (Lang::Zh, NameError::Invisible) => {
                "不能包含不可见、看似空白或改变文字方向的字符".into()
            }
            (Lang::Zh, NameError::Taken) => "已被使用".into(),
            (Lang::Zh, NameError::Reserved) => "是保留名称".into(),
            (Lang::Zh, NameError::Pending) => "上一次更改仍在处理中".into(),
        }
    }

    /// 03: a nickname was refused (new: the tutorial accepted any nickname,
    /// duplicates and newlines included).
    pub fn nick_invalid(&self, e: NameError, max: usize) -> String {
        let why = self.name_reason(e, max);
        pick!(
            self,
            format!("Invalid nickname: {why}\n"),
            format!("昵称无效: {why}\n")
        )
    }

    /// 03: a room name was refused (new: the tutorial did not validate room
    /// names).
    pub fn room_invalid(&self, e: NameError, max: usize) -> String {
        let why = self.name_reason(e, max);
        pick!(
            self,
            format!("Invalid room name: {why}\n"),
            format!("房间名无效: {why}\n")
        )
    }

    /// 03 `/list`. `users` is `(id, nick, room)` in id order.
    pub fn chat_list(&self, users: &[(u64, &str, Option<&str>)]) -> String {
        let rule = "─".repeat(RULE_WIDTH);
        let mut out = pick!(
            self,
            format!("\nOnline users:\n{rule}\n"),
            format!("\n在线用户列表:\n{rule}\n")
        );
        for (id, nick, room) in users {
            let status = match (self.lang, room) {
                (Lang::En, Some(r)) => format!("[room: {r}]"),
                (Lang::En, None) => "[lobby]".to_string(),
                (Lang::Zh, Some(r)) => format!("[房间: {r}]"),
                (Lang::Zh, None) => "[大厅]".to_string(),
            };
            out.push_str(&format!("{id}. {nick} {status}\n"));
        }
        let n = users.len();
        out.push_str(&pick!(
            self,
            format!("\nTotal: {n} online\n"),
            format!("\n总计: {n} 人在线\n")
        ));
        out
    }

    /// 03 `/rooms`. `rooms` is `(name, members)`.
    pub fn chat_rooms(&self, rooms: &[(&str, usize)]) -> String {
        let rule = "─".repeat(RULE_WIDTH);
        let mut out = pick!(
            self,
            format!("\nRooms:\n{rule}\n"),
            format!("\n房间列表:\n{rule}\n")
        );
        if rooms.is_empty() {
            out.push_str(pick!(self, "No active rooms\n", "当前没有活跃的房间\n"));
        }
        for (name, n) in rooms {
            out.push_str(&pick!(
                self,
                format!("{name} ({n} members)\n"),
                format!("{name} ({n} 人)\n")
            ));
        }
        out
    }

    /// 03 `/join`: to the user.
    pub fn joined(&self, room: &str) -> String {
        pick!(
            self,
            format!("Joined room: {room}\n"),
            format!("已加入房间: {room}\n")
        )
    }

    /// 03 `/join`: to the room.
    pub fn join_notice(&self, nick: &str) -> String {
        pick!(
            self,
            format!("{nick} joined the room\n"),
            format!("{nick} 加入了房间\n")
        )
    }

    /// 03 `/join` without an argument.
    pub fn join_usage(&self) -> String {
        pick!(
            self,
            "Usage: /join <room>\n".into(),
            "用法: /join <房间名>\n".into()
        )
    }

    /// 03 `/join` of the room one is in (the tutorial left and re-joined,
    /// sending a leave and a join notice).
    pub fn already_in_room(&self, room: &str) -> String {
        pick!(
            self,
            format!("You are already in room: {room}\n"),
            format!("你已在房间: {room}\n")
        )
    }

    /// 03 `/join` of a new room when the room count is at its cap.
    pub fn too_many_rooms(&self) -> String {
        pick!(
            self,
            "Too many rooms; join an existing one\n".into(),
            "房间数量已达上限,请加入已有房间\n".into()
        )
    }

    /// 03 `/leave`: to the room.
    pub fn leave_notice(&self, nick: &str) -> String {
        pick!(
            self,
            format!("{nick} left the room\n"),
            format!("{nick} 离开了房间\n")
        )
    }

    /// 03 `/leave`: to the user.
    pub fn left(&self, room: &str) -> String {
        pick!(
            self,
            format!("Left room: {room}\n"),
            format!("已离开房间: {room}\n")
        )
    }

    /// 03 `/whisper`: to the target.
    pub fn whisper_from(&self, sender: &str, msg: &str) -> String {
        pick!(
            self,
            format!("[whisper from {sender}]: {msg}\n"),
            format!("[私聊来自 {sender}]: {msg}\n")
        )
    }

    /// 03 `/whisper`: to the sender.
    pub fn whisper_to(&self, target: &str, msg: &str) -> String {
        pick!(
            self,
            format!("[whisper to {target}]: {msg}\n"),
            format!("[私聊发送给 {target}]: {msg}\n")
        )
    }

    /// 03 `/whisper` to nobody.
    pub fn whisper_offline(&self, nick: &str) -> String {
        pick!(
            self,
            format!("User \"{nick}\" is not online\n"),
            format!("用户 \"{nick}\" 不在线\n")
        )
    }

    /// 03 `/whisper` with fewer than two arguments.
    pub fn whisper_usage(&self) -> String {
        pick!(
            self,
            "Usage: /whisper <user> <message>\n".into(),
            "用法: /whisper <用户> <消息>\n".into()
        )
    }

    /// 03: an unknown command (`cmd` lower-cased, as the seed did).
    pub fn chat_unknown(&self, cmd: &str) -> String {
        pick!(
            self,
            format!("Unknown command: {cmd}. Type /help for help\n"),
            format!("未知命令: {cmd}. 输入 /help 查看帮助\n")
        )
    }

    /// 03: a chat line, to the room or the lobby.
    pub fn chat_message(&self, nick: &str, text: &str) -> String {
        format!("[{nick}]: {text}\n")
    }

    /// 03: a user left the server.
    pub fn disconnect_notice(&self, nick: &str) -> String {
        pick!(
            self,
            format!("{nick} left the server\n"),
            format!("{nick} 离开了服务器\n")
        )
    }

    /// 03: a user was disconnected because it did not read (new: the tutorial
    /// ignored backpressure and queued for such a user without bound).
    pub fn evicted_notice(&self, nick: &str) -> String {
        pick!(
            self,
            format!("{nick} was disconnected: not reading\n"),
            format!("{nick} 接收过慢,已被断开\n")
        )
    }

    /// 03: the idle timeout.
    pub fn chat_timeout(&self) -> String {
        pick!(
            self,
            "Connection timed out, disconnecting\n".into(),
            "连接超时,断开连接\n".into()
        )
    }

    /// Chat across servers (`--redis`, new): the other servers cannot be
    /// reached; chat goes on among this server's members. Said once.
    pub fn servers_unreachable(&self) -> String {
        pick!(
            self,
            "Other servers are unreachable: only users on this server receive your messages\n"
                .into(),
            "无法连接其他服务器: 只有本服务器的用户能收到你的消息\n".into()
        )
    }

    /// Chat across servers (new): the other servers are reachable again.
    pub fn servers_back(&self) -> String {
        pick!(
            self,
            "Other servers are reachable again\n".into(),
            "已重新连接其他服务器\n".into()
        )
    }

    /// Chat across servers (new): while the servers were apart, `old` was
    /// claimed on another server; this member is `new` now.
    pub fn nick_lost(&self, old: &str, new: &str) -> String {
        pick!(
            self,
            format!("Nickname {old} is taken on another server: you are now {new}\n"),
            format!("昵称 {old} 已被其他服务器的用户使用: 你现在是 {new}\n")
        )
    }

    /// 03: graceful shutdown.
    pub fn chat_shutdown(&self) -> String {
        pick!(self, "Server shutting down\n".into(), "服务器关闭\n".into())
    }

    // ----- 08: half-close demo ---------------------------------------------

    /// 08 `CLOSE_WRITE`: sent just before our end.
    pub fn close_write_ack(&self) -> String {
        pick!(
            self,
            "Server confirms: closing its write side\n".into(),
            "服务器确认关闭写端\n".into()
        )
    }

    /// 08 `SHUTDOWN`: the three closing lines, then end.
    pub fn shutdown_lines(&self) -> [String; 3] {
        match self.lang {
            Lang::En => [
                "Starting to close the connection...\n".into(),
                "Sending the last data...\n".into(),
                "Goodbye!\n".into(),
            ],
            Lang::Zh => [
                "开始关闭连接...\n".into(),
                "发送最后的数据...\n".into(),
                "再见!\n".into(),
            ],
        }
    }

    /// 08: the one line sent after the peer's FIN.
    pub fn after_fin(&self) -> String {
        pick!(
            self,
            "Data the server sent after the client closed its write side\n".into(),
            "服务器在客户端关闭写端后发送的数据\n".into()
        )
    }

    // ----- JSON servers (06 framed, 07 upload, 09 heartbeat) ---------------
    //
    // These are the `message` texts of JSON replies, without a line end (the
    // codec frames them). `zh` has the seed's wording where the seed had one;
    // texts the seed never had are English in both languages. The Display
    // text of a codec error (bad JSON, an oversized frame or header) is sent
    // as it is.

    /// 06: `welcome`.
    pub fn framed_welcome(&self) -> &'static str {
        pick!(
            self,
            "Welcome to the framed JSON server",
            "欢迎连接到流式TCP服务器"
        )
    }

    /// 06: `error` reply to an unknown message type.
    pub fn unknown_type(&self) -> &'static str {
        pick!(self, "unknown message type", "未知消息类型")
    }

    /// 06: a reply that would exceed our own frame limit (a huge `echo`).
    pub fn reply_too_long(&self, len: usize, max: usize) -> String {
        format!("reply of {len} bytes exceeds the limit of {max}")
    }

    /// 06: a broadcast whose relayed frame (sender and timestamp added)
    /// would exceed the frame limit; sent to its sender only.
    pub fn broadcast_too_long(&self, len: usize, max: usize) -> String {
        format!("broadcast of {len} bytes once wrapped exceeds the limit of {max}; not relayed")
    }

    /// 06, 07: the connection was silent for its idle timeout.
    pub fn idle_timeout(&self) -> &'static str {
        "idle timeout"
    }

    /// 09: `welcome`.
    pub fn heartbeat_welcome(&self) -> &'static str {
        pick!(
            self,
            "Welcome to the heartbeat server",
            "欢迎连接到心跳服务器"
        )
    }

    /// 09: a server `ping`, regular or urgent (the client has been silent).
    pub fn heartbeat_ping(&self, urgent: bool) -> &'static str {
        match (self.lang, urgent) {
            (Lang::En, false) => "heartbeat check",
            (Lang::En, true) => "urgent heartbeat check",
            (Lang::Zh, false) => "心跳检查",
            (Lang::Zh, true) => "紧急心跳检查",
        }
    }

    /// 09: `server_shutdown`.
    pub fn heartbeat_shutdown(&self) -> &'static str {
        pick!(self, "The server is shutting down", "服务器即将关闭")
    }

    /// 09: a line that is not UTF-8 (skipped; the connection goes on).
    pub fn line_not_utf8(&self) -> &'static str {
        "line is not valid UTF-8"
    }

    /// 07: the file workers could not be reached.
    pub fn upload_workers_unavailable(&self) -> &'static str {
        "file workers unavailable"
    }

    /// 07: the client ended its side before `Filesize` bytes arrived.
    pub fn upload_incomplete(&self) -> &'static str {
        "connection ended before the whole file arrived"
    }

    /// 07: an upload cut short by the server's shutdown.
    pub fn upload_shutdown(&self) -> &'static str {
        "server shutting down"
    }

    // ----- access control (src/protocol/auth.rs) --------------------------------
    //
    // The seed had no authentication (its tutorial only sketches the step),
    // so these texts are English in both languages.

    /// Line servers: sent on accept when a token is configured.
    pub fn auth_prompt(&self) -> String {
        "authentication required: send /auth TOKEN\n".into()
    }

    /// Line servers: any line but `/auth` and `/quit` before authentication.
    pub fn auth_required_line(&self) -> String {
        "error: authentication required (send /auth TOKEN)\n".into()
    }

    /// Line servers: the token was right.
    pub fn auth_ok_line(&self) -> String {
        "authenticated\n".into()
    }

    /// Line servers: a wrong token (`failures` of `max`).
    pub fn auth_wrong_line(&self, failures: u32, max: u32) -> String {
        format!("error: wrong token ({failures}/{max})\n")
    }

    /// Line servers: the last allowed failure; the connection is closed.
    pub fn auth_closed_line(&self) -> String {
        "error: too many failed authentication attempts, closing\n".into()
    }

    /// JSON servers: the first message was not an authentication.
    pub fn auth_required(&self) -> &'static str {
        "authentication required"
    }

    /// JSON servers: a wrong or missing token.
    pub fn auth_wrong(&self) -> &'static str {
        "wrong token"
    }

    /// JSON servers: the last allowed failure; the connection is closed.
    pub fn auth_closed(&self) -> &'static str {
        "too many failed authentication attempts"
    }

    /// Every server: an attempt refused by the failure limiter (per address
    /// or in total) without comparing the token; the connection is closed.
    pub fn auth_limited(&self) -> &'static str {
        "too many failed authentication attempts from this address or in total; try again later"
    }

    /// JSON servers: the pre-authentication deadline passed.
    pub fn auth_timeout(&self) -> &'static str {
        "authentication timeout"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zh_welcome_is_the_seed_banner() {
        let got = Catalog::new(Lang::Zh).chat_welcome(2);
        let want = "\n╔══════════════════════════════════╗\n║       欢迎来到TCP聊天服务器       ║\n║                                  ║\n║ 您的ID: 2                        ║\n║ 输入 /help 查看可用命令          ║\n╚══════════════════════════════════╝\n\n";
        assert_eq!(got, want);
    }

    #[test]
    fn en_welcome_lines_are_as_wide_as_the_border() {
        let got = Catalog::new(Lang::En).chat_welcome(12345);
        for line in got.lines().filter(|l| !l.is_empty()) {
            assert_eq!(line.chars().count(), 36, "{line:?}");
        }
    }

    #[test]
    fn json_server_zh_texts_are_the_seeds() {
        let c = Catalog::new(Lang::Zh);
        assert_eq!(c.framed_welcome(), "欢迎连接到流式TCP服务器");
        assert_eq!(c.unknown_type(), "未知消息类型");
        assert_eq!(c.heartbeat_welcome(), "欢迎连接到心跳服务器");
        assert_eq!(c.heartbeat_ping(false), "心跳检查");
        assert_eq!(c.heartbeat_ping(true), "紧急心跳检查");
        assert_eq!(c.heartbeat_shutdown(), "服务器即将关闭");
        // No seed wording: English in both languages.
        assert_eq!(c.idle_timeout(), Catalog::new(Lang::En).idle_timeout());
    }

    #[test]
    fn zh_strings_match_the_transcript() {
        let c = Catalog::new(Lang::Zh);
        assert_eq!(c.command_welcome(2), "欢迎连接! 连接ID: 2\n");
        assert_eq!(c.command_list(&[2, 3]), "活跃连接: 2, 3\n");
        assert_eq!(c.command_unknown("/foo"), "未知命令: /foo\n");
        assert_eq!(
            c.chat_rooms(&[("dev", 2)]),
            "\n房间列表:\n──────────────────────────────\ndev (2 人)\n"
        );
        assert_eq!(
            c.chat_list(&[(2, "alice", Some("dev")), (4, "用户4", None)]),
            "\n在线用户列表:\n──────────────────────────────\n2. alice [房间: dev]\n4. 用户4 [大厅]\n\n总计: 2 人在线\n"
        );
        assert_eq!(
            c.chat_unknown("/bogus"),
            "未知命令: /bogus. 输入 /help 查看帮助\n"
        );
        assert_eq!(c.whisper_offline("nobody"), "用户 \"nobody\" 不在线\n");
    }
}
