package domain

import (
	"fmt"
	"strings"
	"time"
)

// Delivery is one record handed to a consumer: where it is, what it holds,
// and the receipt that acknowledges it.
type Delivery struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       string
	Timestamp time.Time
	// Message is the decoded envelope; zero when the record is poison.
	Message Message
	// Poison says why the record is not a valid envelope; Raw holds its
	// bytes. Poison records are delivered flagged, never skipped.
	Poison string
	Raw    []byte
	// Censored is set when profanity was masked in Message.Text.
	Censored bool
	// Receipt acknowledges or releases the lease on this delivery.
	Receipt string
}

// Gap reports offsets of a partition that retention deleted before the
// consumer group consumed them: From..To inclusive were never delivered.
type Gap struct {
	Topic     string
	Partition int32
	From, To  int64
}

// UnknownReceiptsError names acknowledged receipts that were not leased:
// never issued, already acknowledged, or expired and re-served.
type UnknownReceiptsError struct {
	Receipts []string
}

func (e *UnknownReceiptsError) Error() string {
	return fmt.Sprintf("unknown or expired receipts: %s", strings.Join(e.Receipts, ", "))
}
