//! `netloop serve chat` over loopback: a five-client scenario with rooms,
//! whispers and nick changes (en and zh), the seed's defects as regression
//! tests (forged lines, duplicate and spaced nicknames, lobby leaks), idle
//! timeout and the shutdown notice.

use crate::{lineclient, util};
use lineclient::LineClient;
use util::Server;

fn server(extra: &[&str]) -> Server {
    let mut args = vec!["serve", "chat", "--port", "0"];
    args.extend_from_slice(extra);
    Server::start(&args)
}

/// Connect and read the banner (8 lines: empty, 6 box lines, empty).
fn join(srv: &Server) -> LineClient {
    let mut c = LineClient::connect(srv.addr);
    for _ in 0..8 {
        c.line();
    }
    c
}

/// A marker round trip: once `c` gets the reply to an unknown command, every
/// line sent to it before has been read (the server answers in order).
/// Returns the lines that came before the reply.
fn sync(c: &mut LineClient) -> Vec<String> {
    c.send("/sync-marker");
    let mut seen = Vec::new();
    loop {
        let l = c.line();
        if l.contains("/sync-marker") {
            return seen;
        }
        seen.push(l);
    }
}

#[test]
fn five_clients_rooms_whispers_nicks_in_english() {
    let srv = server(&[]);
    let mut a = join(&srv);
    let mut b = join(&srv);
    let mut c = join(&srv);
    let mut d = join(&srv);
    let mut e = join(&srv);

    a.send("/nick alice");
    a.expect("Nickname changed to: alice\n");
    // Everyone in the lobby hears it.
    for x in [&mut b, &mut c, &mut d, &mut e] {
        x.expect("user1 is now known as alice\n");
    }
    b.send("/nick bob");
    b.expect("Nickname changed to: bob\n");
    for x in [&mut a, &mut c, &mut d, &mut e] {
        x.expect("user2 is now known as bob\n");
    }
    // Unique ignoring case; no spaces; default names reserved.
    e.send("/nick BOB");
    e.expect("Invalid nickname: already in use\n");
    e.send("/nick big boss");
    e.expect("Invalid nickname: must not contain spaces, control characters or [ ] : \"\n");
    e.send("/nick user3");
    e.expect("Invalid nickname: reserved\n");
    e.send(&format!("/nick {}", "x".repeat(33)));
    e.expect("Invalid nickname: must be 1 to 32 characters\n");
    e.send("/nick");
    e.expect("Usage: /nick <new nickname>\n");

    a.send("/join dev");
    a.expect("Joined room: dev\n");
    b.send("/join dev");
    b.expect("Joined room: dev\n");
    a.expect("bob joined the room\n");
    b.send("/join dev");
    b.expect("You are already in room: dev\n");
    c.send("/join ops");
    c.expect("Joined room: ops\n");

    a.send("/rooms");
    a.expect("\nRooms:\n──────────────────────────────\ndev (2 members)\nops (1 members)\n");
    a.send("/list");
    a.expect(
        "\nOnline users:\n──────────────────────────────\n1. alice [room: dev]\n2. bob [room: dev]\n3. user3 [room: ops]\n4. user4 [lobby]\n5. user5 [lobby]\n\nTotal: 5 online\n",
    );

    // Room traffic stays in the room, lobby traffic in the lobby (the tutorial broadcast to everyone).
    a.send("room msg");
    b.expect("[alice]: room msg\n");
    d.send("lobby msg");
    e.expect("[user4]: lobby msg\n");
    // A nick change in a room is told to that room only.
    b.send("/nick bobby");
    b.expect("Nickname changed to: bobby\n");
    a.expect("bob is now known as bobby\n");

    // Whisper: exactly the one user with that nickname, any case.
    a.send("/w BOBBY  secret   plan");
    a.expect("[whisper to bobby]: secret   plan\n");
    b.expect("[whisper from alice]: secret   plan\n");
    a.send("/whisper nobody x");
    a.expect("User \"nobody\" is not online\n");
    a.send("/whisper bobby");
    a.expect("Usage: /whisper <user> <message>\n");

    a.send("/leave");
    a.expect("Left room: dev\n");
    b.expect("alice left the room\n");
    a.send("/bogus arg");
    a.expect("Unknown command: /bogus. Type /help for help\n");
    a.send("/help");
    assert_eq!(a.line(), "\n");
    assert_eq!(a.line(), "Commands:\n");
    a.until("/quit ");
    assert_eq!(a.line(), "\n");

    // Nobody received anything not addressed to them.
    assert_eq!(
        sync(&mut c),
        Vec::<String>::new(),
        "c (room ops) heard nothing"
    );
    assert_eq!(
        sync(&mut d),
        Vec::<String>::new(),
        "d (lobby) heard nothing more"
    );
    assert_eq!(sync(&mut e), Vec::<String>::new(), "e heard nothing more");
    // a is back in the lobby: d's next message reaches it, not the rooms.
    d.send("hello lobby");
    a.expect("[user4]: hello lobby\n");
    e.expect("[user4]: hello lobby\n");
    assert_eq!(
        sync(&mut b),
        Vec::<String>::new(),
        "b (room dev) heard nothing from the lobby"
    );

    // /quit: goodbye, FIN, and everyone is told at once.
    c.send("/quit");
    c.expect("Goodbye!\n");
    assert_eq!(c.rest(), "");
    a.expect("user3 left the server\n");
    b.expect("user3 left the server\n");
    a.send("/list");
    let list = a.until("Total:");
    assert_eq!(list, "Total: 4 online\n");
}

#[test]
fn chinese_strings_byte_for_byte() {
    let srv = server(&["--lang", "zh"]);
    let mut a = LineClient::connect(srv.addr);
    a.expect("\n╔══════════════════════════════════╗\n║       欢迎来到TCP聊天服务器       ║\n║                                  ║\n║ 您的ID: 1                        ║\n║ 输入 /help 查看可用命令          ║\n╚══════════════════════════════════╝\n\n");
    let mut b = join(&srv);
    a.send("/help");
    a.expect("\n可用命令:\n/help          - 显示帮助信息\n/nick <名称>   - 更改昵称\n/list          - 显示在线用户\n/rooms         - 显示房间列表\n/join <房间>   - 加入房间\n/leave         - 离开当前房间\n/whisper <用户> <消息> - 私聊\n/quit          - 退出服务器\n\n");
    a.send("/nick alice");
    a.expect("昵称已更改为: alice\n");
    b.expect("用户1 更改昵称为 alice\n");
    a.send("/rooms");
    a.expect("\n房间列表:\n──────────────────────────────\n当前没有活跃的房间\n");
    a.send("/join dev");
    a.expect("已加入房间: dev\n");
    b.send("/join dev");
    b.expect("已加入房间: dev\n");
    a.expect("用户2 加入了房间\n");
    a.send("/list");
    a.expect("\n在线用户列表:\n──────────────────────────────\n1. alice [房间: dev]\n2. 用户2 [房间: dev]\n\n总计: 2 人在线\n");
    a.send("room msg");
    b.expect("[alice]: room msg\n");
    a.send("/w 用户2 secret");
    a.expect("[私聊发送给 用户2]: secret\n");
    b.expect("[私聊来自 alice]: secret\n");
    a.send("/whisper nobody x");
    a.expect("用户 \"nobody\" 不在线\n");
    a.send("/whisper bob");
    a.expect("用法: /whisper <用户> <消息>\n");
    a.send("/join");
    a.expect("用法: /join <房间名>\n");
    a.send("/nick");
    a.expect("用法: /nick <新昵称>\n");
    a.send("/leave");
    a.expect("已离开房间: dev\n");
    b.expect("alice 离开了房间\n");
    a.send("/bogus");
    a.expect("未知命令: /bogus. 输入 /help 查看帮助\n");
    b.send("/quit");
    b.expect("再见!\n");
    a.expect("用户2 离开了服务器\n");
}

#[test]
fn forged_lines_are_impossible() {
    let srv = server(&["--lang", "zh"]);
    let mut a = join(&srv);
    let mut b = join(&srv);
    // Two commands in one write are two commands, not a nickname with a newline.
    b.send_raw(b"/nick eve\n/join ops\n");
    b.expect("昵称已更改为: eve\n已加入房间: ops\n");
    a.expect("用户2 更改昵称为 eve\n");
    a.send("/join ops");
    a.expect("已加入房间: ops\n");
    b.expect("用户1 加入了房间\n");
    // An embedded newline makes two chat lines, both visibly from eve.
    b.send_raw("hi\n[私聊来自 alice]: please send me your password\n".as_bytes());
    a.expect("[eve]: hi\n[eve]: [私聊来自 alice]: please send me your password\n");
    // A bare CR or an escape sequence cannot rewrite the reader's line.
    b.send("x\r[私聊来自 alice]: y");
    a.expect("[eve]: x\u{FFFD}[私聊来自 alice]: y\n");
    // A nickname cannot imitate a server prefix.
    b.send("/nick [私聊来自");
    b.expect("昵称无效: 不能包含空白、控制字符或 [ ] : \"\n");
}

#[test]
fn idle_timeout_and_shutdown_notices() {
    for (lang, idle, bye, left) in [
        (
            "zh",
            "连接超时,断开连接\n",
            "服务器关闭\n",
            "用户1 离开了服务器\n",
        ),
        (
            "en",
            "Connection timed out, disconnecting\n",
            "Server shutting down\n",
            "user1 left the server\n",
        ),
    ] {
        let srv = server(&["--lang", lang, "--idle-timeout", "300ms"]);
        let mut a = join(&srv);
        let mut b = join(&srv);
        // Both time out at about the same time; whichever went first is announced to the
        // other, if the other's session was still on.
        let left_b = left.replace('1', "2");
        let a_lines = a.rest();
        assert!(
            a_lines == idle || a_lines == format!("{left_b}{idle}"),
            "{a_lines:?}"
        );
        let b_lines = b.rest();
        assert!(
            b_lines == idle || b_lines == format!("{left}{idle}"),
            "{b_lines:?}"
        );

        let mut srv = server(&["--lang", lang]);
        let mut a = join(&srv);
        let mut b = join(&srv);
        srv.signal("INT");
        a.expect(bye);
        assert_eq!(a.rest(), "");
        b.expect(bye);
        assert_eq!(b.rest(), "");
        drop((a, b));
        assert_eq!(srv.wait_exit(), Some(0));
    }
}

#[test]
fn slow_consumer_notice_in_chinese() {
    use std::io::Write;
    let srv = server(&[
        "--lang",
        "zh",
        "--max-write-buffer",
        "64KiB",
        "--high-water-mark",
        "16KiB",
    ]);
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    sock.connect(&srv.addr.into()).unwrap();
    let _stalled: std::net::TcpStream = sock.into(); // 用户1, never reads
    let mut reader = join(&srv);
    let flooder = join(&srv);
    let line = format!("{}\n", "x".repeat(1000));
    let mut w = flooder.w.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        for _ in 0..8192 {
            if w.write_all(line.as_bytes()).is_err() {
                break;
            }
        }
    });
    reader.until("用户1 接收过慢,已被断开\n");
    writer.join().unwrap();
    flooder.shutdown_write();
}

#[test]
fn look_alike_and_invisible_nicknames_are_refused_and_rooms_fold_case() {
    let srv = server(&[]);
    let mut a = join(&srv);
    let mut b = join(&srv);
    a.send("/nick admin");
    a.expect("Nickname changed to: admin\n");
    b.expect("user1 is now known as admin\n");
    // One name after compatibility normalisation, case folding and the
    // confusable skeleton: fullwidth, Cyrillic а, upper case.
    for same in ["\u{ff21}dmin", "\u{430}dmin", "ADMIN"] {
        b.send(&format!("/nick {same}"));
        b.expect("Invalid nickname: already in use\n");
    }
    // Invisible, blank-looking and direction-changing characters.
    let invisible =
        "Invalid nickname: must not contain invisible, blank-looking or direction-changing characters\n";
    for bad in [
        "admin\u{200b}",
        "\u{202e}nimda",
        "\u{2800}\u{2800}",
        "a\u{feff}b",
    ] {
        b.send(&format!("/nick {bad}"));
        b.expect(invisible);
    }
    // A name typed with capitals is kept as typed.
    b.send("/nick Bob");
    b.expect("Nickname changed to: Bob\n");
    a.expect("user2 is now known as Bob\n");
    // Relayed text loses its bidi controls and zero-width characters.
    b.send("hi \u{202e}dlrow\u{200b}!");
    a.expect("[Bob]: hi dlrow!\n");
    // `Dev` and `dev` are one room, shown under its first name.
    a.send("/join Dev");
    a.expect("Joined room: Dev\n");
    b.send("/join dev");
    b.expect("Joined room: Dev\n");
    a.expect("Bob joined the room\n");
    b.send("/join DEV");
    b.expect("You are already in room: Dev\n");
    b.send("/join d\u{200b}ev");
    b.expect(
        "Invalid room name: must not contain invisible, blank-looking or direction-changing characters\n",
    );
    sync(&mut a);
}
