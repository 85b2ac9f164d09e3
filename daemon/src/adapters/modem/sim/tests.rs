use super::*;
use crate::adapters::modem::parser::{parse_line, CallerNumber, CidField, ModemLine};
use std::time::Duration;
use tokio::io::DuplexStream;

const WAIT: Duration = Duration::from_secs(5);

/// The daemon's side of the line.
struct Client {
    io: DuplexStream,
    splitter: LineSplitter,
    lines: VecDeque<ModemLine>,
}

impl Client {
    fn new(opts: SimOptions) -> (Client, SimModem) {
        let (ours, theirs) = tokio::io::duplex(4096);
        let sim = SimModem::spawn(theirs, opts);
        let client = Client {
            io: ours,
            splitter: LineSplitter::new(1024),
            lines: VecDeque::new(),
        };
        (client, sim)
    }

    async fn send(&mut self, command: &str) {
        self.io.write_all(command.as_bytes()).await.unwrap();
        self.io.write_all(b"\r").await.unwrap();
    }

    /// The next parsed line, or None on EOF.
    async fn next(&mut self) -> Option<ModemLine> {
        loop {
            if let Some(line) = self.lines.pop_front() {
                return Some(line);
            }
            let mut buf = [0u8; 256];
            let n = tokio::time::timeout(WAIT, self.io.read(&mut buf))
                .await
                .expect("timed out waiting for the simulated modem")
                .unwrap();
            if n == 0 {
                return None;
            }
            let lines = &mut self.lines;
            self.splitter
                .push(&buf[..n], &mut |l| lines.push_back(parse_line(l)));
        }
    }

    async fn expect(&mut self, expected: &[ModemLine]) {
        for want in expected {
            assert_eq!(self.next().await.as_ref(), Some(want));
        }
    }

    /// Sends a command and checks the answer lines.
    async fn command(&mut self, command: &str, expected: &[ModemLine]) {
        self.send(command).await;
        self.expect(expected).await;
    }
}

fn echo(s: &str) -> ModemLine {
    ModemLine::Echo(s.to_owned())
}

async fn initialized_within(sim: &SimModem, wait: Duration) -> bool {
    tokio::time::timeout(wait, sim.wait_initialized())
        .await
        .is_ok()
}

#[tokio::test]
async fn init_handshake_answers_like_a_modem() {
    let (mut client, sim) = Client::new(SimOptions::default());
    client.command("ATZ", &[echo("ATZ"), ModemLine::Ok]).await;
    client.command("AT", &[echo("AT"), ModemLine::Ok]).await;
    client.command("ATE0", &[echo("ATE0"), ModemLine::Ok]).await;
    // Echo is now off.
    client.command("AT+VCID=1", &[ModemLine::Ok]).await;
    assert!(initialized_within(&sim, WAIT).await);
    client
        .command(
            "ATI",
            &[
                ModemLine::Other("LINEKEEPER SIMULATED MODEM".to_owned()),
                ModemLine::Ok,
            ],
        )
        .await;
    client
        .command(
            "AT+VCID?",
            &[ModemLine::Other("1".to_owned()), ModemLine::Ok],
        )
        .await;
    client.command("AT+BOGUS=1", &[ModemLine::Error]).await;
    client.command("ATJ", &[ModemLine::Error]).await;
    // Lines that are not commands get no answer; the next command still works.
    client.send("hello").await;
    client.command("at", &[ModemLine::Ok]).await;
    // ATZ restores the power-on echo.
    client.command("ATZ", &[ModemLine::Ok]).await;
    client.command("AT", &[echo("AT"), ModemLine::Ok]).await;
    assert_eq!(
        sim.commands().await,
        [
            "ATZ",
            "AT",
            "ATE0",
            "AT+VCID=1",
            "ATI",
            "AT+VCID?",
            "AT+BOGUS=1",
            "ATJ",
            "hello",
            "at",
            "ATZ",
            "AT"
        ]
    );
}

#[tokio::test]
async fn vcid_unsupported_falls_back_to_hash_cid() {
    let opts = SimOptions {
        echo: false,
        vcid_supported: false,
        ident: "TEST".to_owned(),
    };
    let (mut client, sim) = Client::new(opts);
    client.command("AT+VCID=1", &[ModemLine::Error]).await;
    assert!(!initialized_within(&sim, Duration::from_millis(100)).await);
    client.command("AT#CID=1", &[ModemLine::Ok]).await;
    assert!(initialized_within(&sim, WAIT).await);
}

#[tokio::test]
async fn ncid_style_compound_commands() {
    let (mut client, sim) = Client::new(SimOptions::default());
    client
        .command(
            "AT Z S0=0 E1 V1 Q0",
            &[echo("AT Z S0=0 E1 V1 Q0"), ModemLine::Ok],
        )
        .await;
    client
        .command(
            "AT+FCLASS=8;+VCID=1",
            &[echo("AT+FCLASS=8;+VCID=1"), ModemLine::Ok],
        )
        .await;
    assert!(initialized_within(&sim, WAIT).await);
    client
        .command(
            "ATS0?",
            &[
                echo("ATS0?"),
                ModemLine::Other("000".to_owned()),
                ModemLine::Ok,
            ],
        )
        .await;
    // Numeric results after V0 ("0\r" / "4\r"), still understood by the parser.
    client
        .command("ATE0V0", &[echo("ATE0V0"), ModemLine::Ok])
        .await;
    client.command("ATE2", &[ModemLine::Error]).await;
    client.command("AT&F", &[ModemLine::Ok]).await;
    // An overlong command line answers ERROR, and the modem keeps working.
    let long = format!("AT{}", "S".repeat(MAX_COMMAND_LEN));
    client.command(&long, &[ModemLine::Error]).await;
    client.command("AT", &[echo("AT"), ModemLine::Ok]).await;
}

#[tokio::test]
async fn ring_and_caller_id_parse_back() {
    let (mut client, sim) = Client::new(SimOptions::default());
    sim.ring().await;
    client.expect(&[ModemLine::Ring { label: None }]).await;

    sim.caller_id(Some("4075550000"), Some("JOHN DOE")).await;
    let date = client.next().await;
    let Some(ModemLine::Field(CidField::Date(date))) = date else {
        panic!("expected DATE, got {date:?}");
    };
    assert!(date.len() == 4 && date.bytes().all(|b| b.is_ascii_digit()));
    let time = client.next().await;
    assert!(
        matches!(&time, Some(ModemLine::Field(CidField::Time(t))) if t.len() == 4),
        "expected TIME, got {time:?}"
    );
    client
        .expect(&[
            ModemLine::Field(CidField::Number(CallerNumber::Known(
                "4075550000".to_owned(),
            ))),
            ModemLine::Field(CidField::Name("JOHN DOE".to_owned())),
        ])
        .await;

    sim.ring().await;
    sim.caller_id(None, None).await;
    client.expect(&[ModemLine::Ring { label: None }]).await;
    client.next().await; // DATE
    client.next().await; // TIME
    client
        .expect(&[ModemLine::Field(CidField::Number(CallerNumber::Withheld))])
        .await;

    sim.offhook().await;
    sim.onhook().await;
    client
        .expect(&[ModemLine::OffHook, ModemLine::OnHook])
        .await;

    // Garbage, then a valid line.
    sim.raw(b"\xff\x00\x10R\x10X junk \xfe\r\n".to_vec()).await;
    sim.raw(b"\x10NMBR = 123\r\n".to_vec()).await;
    let garbage = client.next().await;
    assert!(
        matches!(garbage, Some(ModemLine::Other(_))),
        "got {garbage:?}"
    );
    client
        .expect(&[ModemLine::Field(CidField::Number(CallerNumber::Known(
            "123".to_owned(),
        )))])
        .await;
}

#[tokio::test]
async fn task_ends_on_eof_and_handles_do_not_hang() {
    let (client, sim) = Client::new(SimOptions::default());
    drop(client);
    tokio::time::timeout(WAIT, async {
        while sim.is_running() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("modem task did not stop on EOF");
    // Calls on a stopped modem return instead of hanging.
    tokio::time::timeout(WAIT, async {
        sim.ring().await;
        sim.wait_initialized().await;
    })
    .await
    .expect("handle hung on a stopped modem");
}

#[tokio::test]
async fn task_ends_when_all_handles_are_dropped() {
    let (mut client, sim) = Client::new(SimOptions::default());
    let clone = sim.clone();
    client.command("AT", &[echo("AT"), ModemLine::Ok]).await;
    drop(sim);
    client.command("AT", &[echo("AT"), ModemLine::Ok]).await;
    drop(clone);
    // The task drops the stream, so the daemon's side sees EOF.
    assert_eq!(client.next().await, None);
}
