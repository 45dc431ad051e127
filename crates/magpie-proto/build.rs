//! Generates the prost types from `spec/proto/*.proto` without a system `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_dir = "../../spec/proto";
    let file = format!("{proto_dir}/magpie.proto");
    println!("cargo:rerun-if-changed={file}");
    let descriptors = protox::compile([file.as_str()], [proto_dir])?;
    prost_build::Config::new()
        .bytes(["."])
        // Maps encode in key order, so equal messages give equal bytes.
        .btree_map(["."])
        // The largest GROUP operation and the group in GROUP_REPLY, by far the largest fields:
        // boxed so that every packet body stays small.
        .boxed(".magpie.v1.Group.op.set_info")
        .boxed(".magpie.v1.GroupReply.group")
        .compile_fds(descriptors)?;
    Ok(())
}
