package kafka

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/IBM/sarama"
)

// Record is one committed record of a topic as read from the log.
type Record struct {
	Partition int32
	Offset    int64
	Key       []byte
	Value     []byte
	Headers   []*sarama.RecordHeader
}

// LogReader reads topics to their end as of a moment, the way an auditor
// or a rebuild needs: every committed record, in partition and offset
// order, and then stop. sarama's consumer cannot say when a read_committed
// reader has reached the end (transaction markers and aborted records take
// offsets but are never delivered), so this fetches itself and follows
// each batch's last offset.
type LogReader struct {
	client sarama.Client
}

// NewLogReader connects to brokers. Close releases the connection.
func NewLogReader(brokers []string) (*LogReader, error) {
	addrs, conf, err := clientConfig(brokers, "integr8scode-reader")
	if err != nil {
		return nil, fmt.Errorf("log reader: %w", err)
	}
	conf.Consumer.IsolationLevel = sarama.ReadCommitted
	client, err := sarama.NewClient(addrs, conf)
	if err != nil {
		return nil, fmt.Errorf("log reader: %w", err)
	}
	return &LogReader{client: client}, nil
}

// Close closes the reader's connections.
func (r *LogReader) Close() error { return r.client.Close() }

// Partitions lists topic's partitions in order.
func (r *LogReader) Partitions(topic string) ([]int32, error) {
	ps, err := r.client.Partitions(topic)
	if err != nil {
		return nil, fmt.Errorf("partitions of %s: %w", topic, err)
	}
	ps = append([]int32(nil), ps...)
	sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
	return ps, nil
}

// Ends returns, for each partition of topic, the last stable offset: the
// end of what a read_committed reader can see now.
func (r *LogReader) Ends(topic string) (map[int32]int64, error) {
	ps, err := r.Partitions(topic)
	if err != nil {
		return nil, err
	}
	ends := make(map[int32]int64, len(ps))
	for _, p := range ps {
		broker, err := r.client.Leader(topic, p)
		if err != nil {
			return nil, err
		}
		req := sarama.NewOffsetRequest(r.client.Config().Version)
		req.IsolationLevel = sarama.ReadCommitted
		req.AddBlock(topic, p, sarama.OffsetNewest, 1)
		resp, err := broker.GetAvailableOffsets(req)
		if err != nil {
			return nil, fmt.Errorf("end of %s/%d: %w", topic, p, err)
		}
		b := resp.GetBlock(topic, p)
		if b == nil || !errors.Is(b.Err, sarama.ErrNoError) {
			return nil, fmt.Errorf("end of %s/%d: %v", topic, p, b)
		}
		ends[p] = b.Offset
		if len(b.Offsets) > 0 {
			ends[p] = b.Offsets[0]
		}
	}
	return ends, nil
}

// Read calls fn for every committed record of topic's partition p from
// offset from up to (not including) to.
func (r *LogReader) Read(ctx context.Context, topic string, p int32, from, to int64, fn func(Record) error) error {
	next := from
	for next < to {
		if err := ctx.Err(); err != nil {
			return err
		}
		broker, err := r.client.Leader(topic, p)
		if err != nil {
			return err
		}
		req := &sarama.FetchRequest{Version: 11, MaxWaitTime: 100, MinBytes: 1, MaxBytes: 64 << 20,
			Isolation: sarama.ReadCommitted, SessionID: 0, SessionEpoch: -1}
		req.AddBlock(topic, p, next, 16<<20, -1)
		resp, err := broker.Fetch(req)
		if err != nil {
			return fmt.Errorf("fetch %s/%d@%d: %w", topic, p, next, err)
		}
		block := resp.GetBlock(topic, p)
		if block == nil {
			return fmt.Errorf("fetch %s/%d@%d: no answer for the partition", topic, p, next)
		}
		if !errors.Is(block.Err, sarama.ErrNoError) {
			return fmt.Errorf("fetch %s/%d@%d: %w", topic, p, next, block.Err)
		}
		advanced, err := readBlock(block, next, to, func(rec Record) error {
			rec.Partition = p
			return fn(rec)
		})
		if err != nil {
			return err
		}
		if advanced == next && block.LastStableOffset <= next {
			break // nothing more is committed (to was beyond the end)
		}
		next = advanced
	}
	return nil
}

// readBlock hands the committed data records of a fetch answer from
// offset next (below to) to fn, dropping transaction markers and records
// of aborted transactions, and returns the offset after the last batch.
func readBlock(block *sarama.FetchResponseBlock, next, to int64, fn func(Record) error) (int64, error) {
	aborted := append([]*sarama.AbortedTransaction(nil), block.AbortedTransactions...)
	sort.Slice(aborted, func(i, j int) bool { return aborted[i].FirstOffset < aborted[j].FirstOffset })
	abortedPIDs := map[int64]bool{}
	for _, set := range block.RecordsSet {
		b := set.RecordBatch
		if b == nil {
			return next, errors.New("legacy message format: the ledger needs record batches (Kafka >= 0.11)")
		}
		for len(aborted) > 0 && aborted[0].FirstOffset <= b.LastOffset() {
			abortedPIDs[aborted[0].ProducerID] = true
			aborted = aborted[1:]
		}
		if b.Control {
			// A transaction marker: key = version (int16), type (int16, 0 = abort).
			if len(b.Records) > 0 && len(b.Records[0].Key) >= 4 && binary.BigEndian.Uint16(b.Records[0].Key[2:4]) == 0 {
				delete(abortedPIDs, b.ProducerID)
			}
		} else if !(b.IsTransactional && abortedPIDs[b.ProducerID]) {
			for _, rec := range b.Records {
				off := b.FirstOffset + rec.OffsetDelta
				if off < next || off >= to {
					continue
				}
				if err := fn(Record{Offset: off, Key: rec.Key, Value: rec.Value, Headers: rec.Headers}); err != nil {
					return next, err
				}
			}
		}
		if b.PartialTrailingRecord {
			break
		}
		if last := b.LastOffset() + 1; last > next {
			next = last
		}
	}
	return next, nil
}

// ReadAll reads every committed record of topic, partition by partition,
// up to the end as of the call.
func (r *LogReader) ReadAll(ctx context.Context, topic string, fn func(Record) error) error {
	ends, err := r.Ends(topic)
	if err != nil {
		return err
	}
	ps := make([]int32, 0, len(ends))
	for p := range ends {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
	for _, p := range ps {
		if err := r.Read(ctx, topic, p, 0, ends[p], fn); err != nil {
			return err
		}
	}
	return nil
}

// Pending reports whether any committed record of topic's partition p lies
// in [from, to): false means a reader at from has seen everything below
// to (what is left there are transaction markers and aborted records).
func (r *LogReader) Pending(ctx context.Context, topic string, p int32, from, to int64) (bool, error) {
	errFound := errors.New("found")
	err := r.Read(ctx, topic, p, from, to, func(Record) error { return errFound })
	if errors.Is(err, errFound) {
		return true, nil
	}
	return false, err
}

// OffsetsAt returns, for each partition of topic, the first offset whose
// record's timestamp is at or after t (the end of the partition if none).
func (r *LogReader) OffsetsAt(topic string, t time.Time) (map[int32]int64, error) {
	ps, err := r.Partitions(topic)
	if err != nil {
		return nil, err
	}
	out := make(map[int32]int64, len(ps))
	for _, p := range ps {
		off, err := r.client.GetOffset(topic, p, t.UnixMilli())
		if err != nil {
			return nil, fmt.Errorf("offset of %s/%d at %s: %w", topic, p, t.Format(time.RFC3339), err)
		}
		if off < 0 { // no record that late: the end
			if off, err = r.client.GetOffset(topic, p, sarama.OffsetNewest); err != nil {
				return nil, err
			}
		}
		out[p] = off
	}
	return out, nil
}
