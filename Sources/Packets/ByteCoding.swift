/// Big-endian (network order) writing into a growing byte array.
struct ByteWriter {
    var bytes: [UInt8]

    init(capacity: Int) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    mutating func u8(_ value: UInt8) { bytes.append(value) }
    mutating func u16(_ value: UInt16) {
        bytes.append(UInt8(value >> 8))
        bytes.append(UInt8(truncatingIfNeeded: value))
    }
    mutating func u32(_ value: UInt32) {
        u16(UInt16(value >> 16))
        u16(UInt16(truncatingIfNeeded: value))
    }
    mutating func u64(_ value: UInt64) {
        u32(UInt32(value >> 32))
        u32(UInt32(truncatingIfNeeded: value))
    }
    mutating func zeros(_ count: Int) { bytes.append(contentsOf: repeatElement(0, count: count)) }
}

/// Big-endian writing in place, into a buffer the caller has sized: no allocation, for what
/// goes out once per packet.
struct ByteStore {
    let buffer: UnsafeMutableRawBufferPointer
    private(set) var offset: Int

    init(_ buffer: UnsafeMutableRawBufferPointer, offset: Int) {
        self.buffer = buffer
        self.offset = offset
    }

    mutating func u8(_ value: UInt8) {
        buffer[offset] = value
        offset += 1
    }
    mutating func u16(_ value: UInt16) {
        precondition(offset + 2 <= buffer.count)
        buffer.storeBytes(of: value.bigEndian, toByteOffset: offset, as: UInt16.self)
        offset += 2
    }
    mutating func u32(_ value: UInt32) {
        precondition(offset + 4 <= buffer.count)
        buffer.storeBytes(of: value.bigEndian, toByteOffset: offset, as: UInt32.self)
        offset += 4
    }
    mutating func u64(_ value: UInt64) {
        precondition(offset + 8 <= buffer.count)
        buffer.storeBytes(of: value.bigEndian, toByteOffset: offset, as: UInt64.self)
        offset += 8
    }
}

/// Big-endian reading from a byte buffer; every read is bounds-checked by the caller's length
/// check first (`remaining`), so a short buffer is a decode result, never a crash.
struct ByteReader {
    let buffer: UnsafeRawBufferPointer
    private(set) var offset: Int

    init(_ buffer: UnsafeRawBufferPointer, offset: Int = 0) {
        self.buffer = buffer
        self.offset = offset
    }

    var remaining: Int { buffer.count - offset }

    mutating func u8() -> UInt8 {
        defer { offset += 1 }
        return buffer[offset]
    }
    mutating func u16() -> UInt16 { UInt16(u8()) << 8 | UInt16(u8()) }
    mutating func u32() -> UInt32 { UInt32(u16()) << 16 | UInt32(u16()) }
    mutating func u64() -> UInt64 { UInt64(u32()) << 32 | UInt64(u32()) }
    mutating func skip(_ count: Int) { offset += count }
}
