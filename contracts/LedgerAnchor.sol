// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// @title LedgerAnchor — a publisher-restricted registry of caseledger round roots (DESIGN §6)
/// @notice The owner (the deployer) adds and removes publishers; a publisher anchors the root of an
///         anchoring round exactly once. What is stored for a round never changes afterwards.
/// @dev A round costs two fresh storage slots: the root, and one word packing the leaf count, the
///      block number, the block timestamp and the publisher. Block number and timestamp are kept as
///      uint32 (timestamps until 2106, 4.29e9 blocks) so that the second word fits; `anchor` refuses
///      to run past either limit rather than truncate.
contract LedgerAnchor {
    struct Round {
        bytes32 root;
        uint32 leaves;
        uint32 blockNumber;
        uint32 timestamp;
        address publisher;
    }

    address public immutable owner;

    mapping(address => bool) private publishers;
    mapping(uint64 => Round) private rounds;

    event PublisherAdded(address indexed publisher);
    event PublisherRemoved(address indexed publisher);
    event Anchored(uint64 indexed round, bytes32 root, uint32 leaves, address publisher);

    /// @notice The deployer becomes the owner and the first publisher (it may remove itself).
    constructor() {
        owner = msg.sender;
        publishers[msg.sender] = true;
        emit PublisherAdded(msg.sender);
    }

    modifier onlyOwner() {
        require(msg.sender == owner, "LedgerAnchor: not the owner");
        _;
    }

    function addPublisher(address publisher) external onlyOwner {
        require(publisher != address(0), "LedgerAnchor: zero address");
        if (!publishers[publisher]) {
            publishers[publisher] = true;
            emit PublisherAdded(publisher);
        }
    }

    function removePublisher(address publisher) external onlyOwner {
        if (publishers[publisher]) {
            publishers[publisher] = false;
            emit PublisherRemoved(publisher);
        }
    }

    function isPublisher(address account) external view returns (bool) {
        return publishers[account];
    }

    function anchor(uint64 round, bytes32 root, uint32 leaves) external {
        require(publishers[msg.sender], "LedgerAnchor: not a publisher");
        require(root != bytes32(0), "LedgerAnchor: empty root");
        require(leaves != 0, "LedgerAnchor: no leaves");
        Round storage stored = rounds[round];
        require(stored.root == bytes32(0), "LedgerAnchor: round already anchored");
        require(
            block.number <= type(uint32).max && block.timestamp <= type(uint32).max,
            "LedgerAnchor: block out of range"
        );
        stored.root = root;
        stored.leaves = leaves;
        stored.blockNumber = uint32(block.number);
        stored.timestamp = uint32(block.timestamp);
        stored.publisher = msg.sender;
        emit Anchored(round, root, leaves, msg.sender);
    }

    /// @notice What is stored for `round`; every field is zero when the round is not anchored.
    function getRound(uint64 round)
        external
        view
        returns (bytes32 root, uint32 leaves, uint64 blockNumber, uint64 timestamp, address publisher)
    {
        Round storage stored = rounds[round];
        return (stored.root, stored.leaves, stored.blockNumber, stored.timestamp, stored.publisher);
    }
}
