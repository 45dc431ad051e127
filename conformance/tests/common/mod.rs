//! What the conformance tests' servers share.

use magpie_conformance::Rates;

/// The rates the tests' magpied runs with and declares to the suite ([SESSION-6.4],
/// [SESSION-6.6]): high enough that the cases which need volume (1,003 messages from one user for
/// the retention case) wait little (about 6 s), low enough that `session/6.4/1` outpaces them
/// with a wide margin on a slow machine (800 SENDs within the 4 s a burst takes to refill).
pub(crate) const RATES: Rates = Rates {
    send_rate: 100,
    send_burst: 400,
    packet_rate: 5000,
    packet_burst: 5000,
};

/// `settings` with [`RATES`].
pub(crate) fn with_rates(settings: magpied::Settings) -> magpied::Settings {
    magpied::Settings {
        send_rate: RATES.send_rate,
        send_burst: RATES.send_burst,
        packet_rate: RATES.packet_rate,
        packet_burst: RATES.packet_burst,
        ..settings
    }
}
