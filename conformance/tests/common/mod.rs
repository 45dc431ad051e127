//! What the conformance tests' servers share.

use magpie_conformance::Rates;

/// The rates the tests' magpied runs with and declares to the suite ([SESSION-6.4],
/// [SESSION-6.6]): high enough that the cases which need volume (1,003 messages from one user for
/// the retention case) wait little, low enough that the rate cases reach them in a bounded run.
pub(crate) const RATES: Rates = Rates {
    send_rate: 500,
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
