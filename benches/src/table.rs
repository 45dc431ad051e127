//! The report as markdown.

use std::fmt::Write;

use crate::report::{FRAMING_TARGET, Report};
use crate::sizes::MERGED_TARGET;

fn verdict(ok: bool) -> &'static str {
    if ok { "PASS" } else { "MISS" }
}

/// The report as a markdown document: throughput table, framing overhead, wire sizes, targets.
pub fn markdown(r: &Report) -> String {
    let mut o = String::new();
    // Writing to a String cannot fail.
    let _ = write_all(&mut o, r);
    o
}

fn write_all(o: &mut String, r: &Report) -> std::fmt::Result {
    let z = &r.sizes;
    let quick = if r.quick {
        " (QUICK: timings meaningless)"
    } else {
        ""
    };
    writeln!(o, "# magpie-wire codec report{quick}\n")?;
    writeln!(
        o,
        "Corpus: {} chat messages, mean prost body {:.1} B, typical (median) body {} B.\n",
        z.msgs, z.mean_body, z.typical_body
    )?;
    writeln!(o, "## Throughput\n")?;
    writeln!(
        o,
        "MB/s counts the messages as uncompressed single frames, so rows compare. \
         × memcpy: time / copying the case's own wire bytes into a preallocated BytesMut. \
         × prost: time / prost-decoding the same bodies with no framing.\n"
    )?;
    writeln!(
        o,
        "| case | msgs | wire B | ns/msg | packets/s | MB/s | × memcpy | × prost |"
    )?;
    writeln!(o, "|---|---:|---:|---:|---:|---:|---:|---:|")?;
    for row in &r.rows {
        writeln!(
            o,
            "| {} | {} | {} | {:.1} | {:.2} M | {:.1} | {:.1} | {:.2} |",
            row.name,
            row.msgs,
            row.wire_bytes,
            row.ns_per_msg,
            row.msgs_per_s / 1e6,
            row.mb_per_s,
            row.vs_memcpy,
            row.vs_prost
        )?;
    }
    writeln!(
        o,
        "\n## Framing overhead: (framed decode + prost decode) / (prost decode alone)\n"
    )?;
    writeln!(
        o,
        "Each pair measured interleaved, so machine drift affects both alike.\n"
    )?;
    writeln!(
        o,
        "| framing | framed+prost ns/msg | prost alone ns/msg | ratio |"
    )?;
    writeln!(o, "|---|---:|---:|---:|")?;
    for ov in &r.overhead {
        writeln!(
            o,
            "| {} | {:.1} | {:.1} | {:.3}× |",
            ov.name, ov.framed_ns, ov.prost_ns, ov.ratio
        )?;
    }
    writeln!(o, "\n## Wire bytes per message\n")?;
    writeln!(
        o,
        "| mode | msgs | wire B | B/msg | vs body | vs uncompressed frames | worst batch |"
    )?;
    writeln!(o, "|---|---:|---:|---:|---:|---:|---:|")?;
    for s in &z.rows {
        let worst = s
            .worst_batch_vs_frames
            .map_or("—".to_owned(), |w| format!("{:.1}%", w * 100.0));
        writeln!(
            o,
            "| {} | {} | {} | {:.1} | {:.1}% | {:.1}% | {} |",
            s.name,
            s.msgs,
            s.wire_bytes,
            s.bytes_per_msg,
            s.vs_body * 100.0,
            s.vs_frames * 100.0,
            worst
        )?;
    }
    writeln!(
        o,
        "\nmerged 64 + deflate = {:.1}% of the bytes of deflating each message alone (threshold 0).\n",
        z.merged64_vs_each_alone * 100.0
    )?;
    writeln!(
        o,
        "{} of {} bodies reach the default 128-byte compression threshold; deflating them one by \
         one saves {} bytes in all.\n",
        z.bodies_at_threshold, z.msgs, z.threshold_saving
    )?;
    writeln!(o, "## Targets\n")?;
    if let Some(ov) = r.target_overhead() {
        writeln!(
            o,
            "- framing adds {:.1}% over prost decode (target ≤ {:.0}%; {}): {}",
            (ov.ratio - 1.0) * 100.0,
            (FRAMING_TARGET - 1.0) * 100.0,
            ov.name,
            if r.quick {
                "not judged (quick run)"
            } else {
                verdict(r.framing_target_met)
            }
        )?;
    }
    writeln!(
        o,
        "- merged+compressed 64 = {:.1}% of summed uncompressed frame sizes (target ≤ {:.0}%): {}",
        z.merged64_deflate_vs_frames * 100.0,
        MERGED_TARGET * 100.0,
        verdict(r.merged_target_met)
    )
}
