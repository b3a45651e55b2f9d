package payment

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/google/uuid"

	"example.com/shop/platform/validation"
)

// Service carries out the payment use cases (charge, refund, reads) under the rules of this
// package, through its ports.
type Service struct {
	store     Store
	orders    Orders
	processor Processor
	notifier  Notifier
	log       *slog.Logger
	now       func() time.Time
	newID     func() string
}

// Deps are a Service's collaborators. Now and NewID default to the clock and random UUIDs.
type Deps struct {
	Store     Store
	Orders    Orders
	Processor Processor
	Notifier  Notifier
	Logger    *slog.Logger
	Now       func() time.Time
	NewID     func() string
}

// NewService returns a Service over d.
func NewService(d Deps) *Service {
	s := &Service{store: d.Store, orders: d.Orders, processor: d.Processor, notifier: d.Notifier,
		log: d.Logger, now: d.Now, newID: d.NewID}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.newID == nil {
		s.newID = uuid.NewString
	}
	return s
}

// processorTimeout bounds one call to the card processor.
const processorTimeout = 30 * time.Second

// timestamp is now in UTC at microsecond precision: what every supported database keeps, so
// a payment reads back exactly as it was written.
func (s *Service) timestamp() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// ChargeRequest asks to charge an order to a card. It has no amount: the amount is always
// the order's total as the order service reports it.
type ChargeRequest struct {
	OrderID string
	Card    Card
	// Key is the caller's Idempotency-Key.
	Key string
}

// fingerprint identifies the request behind an idempotency key. It covers the order and the
// card's brand and last four digits but deliberately not the full number, expiry or CVC: a
// plain hash of a card number is itself card data (the number space left once the last four
// and the issuer prefix are known is small enough to search), and only brand and last four
// may be stored.
func (r ChargeRequest) fingerprint() string {
	return fingerprint("charge", r.OrderID, string(r.Card.Brand()), r.Card.Last4())
}

// ChargeResult is a charge's outcome. Replayed is set when it is the stored answer to an
// earlier request with the same idempotency key.
type ChargeResult struct {
	Payment  Payment
	Replayed bool
}

// Charge charges order req.OrderID's total to req.Card on behalf of a.
//
// The order's payment slot is reserved in the store (status processing) before the
// processor is asked, so two concurrent charges of the same order can never both reach the
// card; the processor's answer then settles the payment as approved, declined or failed.
// A declined or failed charge is a result, not an error: it is recorded, and its key
// replays it.
func (s *Service) Charge(ctx context.Context, a Actor, req ChargeRequest) (ChargeResult, error) {
	key := Idempotency{Subject: a.Subject, Key: req.Key, Fingerprint: req.fingerprint()}
	if res, ok, err := s.replayCharge(ctx, key); ok || err != nil {
		return res, err
	}
	var fields validation.Fields
	if !ValidID(req.OrderID) {
		fields.Add("orderId", "must be an order id (UUID)")
	}
	fields = append(fields, req.Card.Validate(s.now())...)
	if err := fields.Err(); err != nil {
		return ChargeResult{}, err
	}

	order, err := s.orders.Order(ctx, a, req.OrderID)
	if err != nil {
		return ChargeResult{}, err
	}
	// The order service already hides other shoppers' orders; checking again here means a
	// misbehaving order service still cannot make one shopper pay another's order.
	if order.ID != req.OrderID || (order.UserID != a.Subject && !a.Admin) {
		return ChargeResult{}, ErrUnknownOrder
	}
	if order.Status != OrderPending {
		return ChargeResult{}, ErrOrderNotPayable
	}

	now := s.timestamp()
	p := Payment{
		ID: s.newID(), OrderID: order.ID, UserID: order.UserID, Amount: order.Total,
		Status: StatusProcessing, CardBrand: req.Card.Brand(), CardLast4: req.Card.Last4(),
		CreatedAt: now, UpdatedAt: now,
	}
	switch err := s.store.Reserve(ctx, p, key); {
	case errors.Is(err, ErrDuplicateKey):
		// A concurrent request with the same key won the race: answer as its retry would.
		if res, ok, err := s.replayCharge(ctx, key); ok || err != nil {
			return res, err
		}
		return ChargeResult{}, ErrRequestInProgress
	case err != nil:
		return ChargeResult{}, err
	}

	// From here on the card may be charged: finish the payment even if the caller goes away,
	// or it would stay processing and hold the order. The processor still gets a deadline:
	// one that never answers must not hold the request forever.
	ctx = context.WithoutCancel(ctx)
	pctx, cancel := context.WithTimeout(ctx, processorTimeout)
	auth, err := s.processor.Charge(pctx, Charge{Reference: p.ID, Amount: p.Amount, Card: req.Card})
	cancel()
	outcome, reason := StatusApproved, Reason("")
	switch {
	case err != nil:
		s.log.Error("card processor failed", "payment_id", p.ID, "request_id", a.RequestID, "err", err)
		outcome, reason = StatusFailed, ReasonProcessorError
	case !auth.Approved:
		outcome, reason = StatusDeclined, auth.Reason
		if reason == "" {
			reason = ReasonCardDeclined
		}
	}
	done, err := s.settle(ctx, p, outcome, reason, a.RequestID)
	if errors.Is(err, ErrNotProcessing) {
		// Recover settled it meanwhile, from the processor's record of this very charge.
		done, err = s.store.Payment(ctx, p.ID)
	}
	if err != nil {
		return ChargeResult{}, fmt.Errorf("recording the outcome of payment %s: %w", p.ID, err)
	}
	return ChargeResult{Payment: done}, nil
}

// settle records the outcome of processing payment p. An approval is recorded with its
// paid notice for the order service.
func (s *Service) settle(ctx context.Context, p Payment, outcome Status, reason Reason, requestID string) (Payment, error) {
	at := s.timestamp()
	var paid *Notice
	if outcome == StatusApproved {
		// The order service normally learns of the approval from the charge request's
		// answer. The notice covers the case where it never does (it timed out or crashed
		// meanwhile, or the payment was recovered): the order still becomes paid, and a
		// notice after the answer changes nothing.
		paid = &Notice{ID: s.newID(), Kind: NoticePaid, OrderID: p.OrderID, PaymentID: p.ID,
			Amount: p.Amount, RequestID: requestID, CreatedAt: at}
	}
	done, err := s.store.Finish(ctx, p.ID, outcome, reason, at, paid)
	if err != nil {
		return Payment{}, err
	}
	if paid != nil && s.notifier != nil {
		s.notifier.Notify()
	}
	return done, nil
}

// replayCharge answers a request whose key is already taken: the first answer for the same
// request, ErrKeyReused for a different one, ErrPaymentInProgress while the first is
// running (the caller may be the order service, whose shopper never saw the key: "a
// payment for this order is being processed" is what they can act on).
func (s *Service) replayCharge(ctx context.Context, key Idempotency) (ChargeResult, bool, error) {
	p, fp, err := s.store.PaymentByKey(ctx, key.Subject, key.Key)
	switch {
	case errors.Is(err, ErrNotFound):
		return ChargeResult{}, false, nil
	case err != nil:
		return ChargeResult{}, false, err
	case fp != key.Fingerprint:
		return ChargeResult{}, false, ErrKeyReused
	case p.Status == StatusProcessing:
		return ChargeResult{}, false, ErrPaymentInProgress
	}
	return ChargeResult{Payment: p.AsCharged(), Replayed: true}, true, nil
}

// RefundRequest asks to refund a payment. A nil Amount refunds all that remains.
type RefundRequest struct {
	PaymentID string
	Amount    *int64
	Key       string
}

func (r RefundRequest) fingerprint() string {
	amount := "remaining"
	if r.Amount != nil {
		amount = strconv.FormatInt(*r.Amount, 10)
	}
	return fingerprint("refund", r.PaymentID, amount)
}

// RefundResult is a refund's outcome; Replayed as in ChargeResult.
type RefundResult struct {
	Refund   Refund
	Replayed bool
}

// Refund gives back req.Amount (or all that remains) of a payment, on behalf of admin a.
// The refund, the payment's new total, an audit entry and the notice to the order service
// are written in one transaction; the notice is then delivered by the outbox until the
// order service acknowledges it.
func (s *Service) Refund(ctx context.Context, a Actor, req RefundRequest) (RefundResult, error) {
	// The route already demands ADMIN; the domain does not rely on it.
	if !a.Admin {
		return RefundResult{}, ErrForbidden
	}
	key := Idempotency{Subject: a.Subject, Key: req.Key, Fingerprint: req.fingerprint()}
	if res, ok, err := s.replayRefund(ctx, key); ok || err != nil {
		return res, err
	}
	if req.Amount != nil && *req.Amount <= 0 {
		return RefundResult{}, validation.New(validation.FieldError{Field: "amount", Message: "must be greater than 0"})
	}
	if !ValidID(req.PaymentID) {
		return RefundResult{}, ErrNotFound
	}
	now := s.timestamp()
	refundID, noticeID, auditID := s.newID(), s.newID(), s.newID()
	plan := func(p Payment) (RefundPlan, error) {
		if !p.Status.Refundable() {
			return RefundPlan{}, ErrNotRefundable
		}
		amount := p.Remaining()
		if req.Amount != nil {
			if *req.Amount > amount {
				return RefundPlan{}, validation.New(validation.FieldError{Field: "amount", Message: fmt.Sprintf("must be at most %d, what remains of the payment", amount)})
			}
			amount = *req.Amount
		}
		r := Refund{
			ID: refundID, PaymentID: p.ID, OrderID: p.OrderID,
			Amount:        Money{Amount: amount, Currency: p.Amount.Currency},
			FullyRefunded: amount == p.Remaining(), By: a, CreatedAt: now,
		}
		detail, err := json.Marshal(map[string]any{
			"refundId": r.ID, "orderId": r.OrderID, "amount": amount, "currency": r.Amount.Currency,
			"fullyRefunded": r.FullyRefunded,
		})
		if err != nil {
			return RefundPlan{}, err
		}
		return RefundPlan{
			Refund: r,
			Audit: AuditEntry{ID: auditID, At: now, ActorSubject: a.Subject, ActorName: a.Username,
				Action: AuditRefund, Resource: "payment/" + p.ID, Detail: string(detail), RequestID: a.RequestID},
			Notice: Notice{ID: noticeID, Kind: NoticeRefunded, OrderID: p.OrderID, PaymentID: p.ID, RefundID: r.ID, Amount: r.Amount,
				RefundedTotal: p.Refunded + amount, FullyRefunded: r.FullyRefunded, RequestID: a.RequestID, CreatedAt: now},
		}, nil
	}
	r, err := s.store.Refund(ctx, req.PaymentID, key, plan)
	if errors.Is(err, ErrDuplicateKey) {
		if res, ok, err := s.replayRefund(ctx, key); ok || err != nil {
			return res, err
		}
		return RefundResult{}, ErrRequestInProgress
	}
	if err != nil {
		return RefundResult{}, err
	}
	if s.notifier != nil {
		s.notifier.Notify()
	}
	return RefundResult{Refund: r}, nil
}

func (s *Service) replayRefund(ctx context.Context, key Idempotency) (RefundResult, bool, error) {
	r, fp, err := s.store.RefundByKey(ctx, key.Subject, key.Key)
	switch {
	case errors.Is(err, ErrNotFound):
		return RefundResult{}, false, nil
	case err != nil:
		return RefundResult{}, false, err
	case fp != key.Fingerprint:
		return RefundResult{}, false, ErrKeyReused
	}
	return RefundResult{Refund: r, Replayed: true}, true, nil
}

// Payment returns one payment. Whether the caller may see it is the route's policy.
func (s *Service) Payment(ctx context.Context, id string) (Payment, error) {
	if !ValidID(id) {
		return Payment{}, ErrNotFound
	}
	return s.store.Payment(ctx, id)
}

// MyPayments lists the payments a owns.
func (s *Service) MyPayments(ctx context.Context, a Actor, page Page) ([]Payment, error) {
	if a.Subject == "" {
		return nil, ErrForbidden
	}
	return s.store.PaymentsOf(ctx, a.Subject, page)
}

// AllPayments lists every payment matching f (for admins).
func (s *Service) AllPayments(ctx context.Context, f Filter) ([]Payment, error) {
	return s.store.Payments(ctx, f)
}

// maxPaymentsOfOrder bounds PaymentsOfOrder. Once a payment holds an order's slot no other
// payment of the order is ever written, so the one that matters is always the newest.
const maxPaymentsOfOrder = 200

// PaymentsOfOrder lists the payments of an order, newest first, for the order service's
// reconciliation: whether one holds the order's slot tells whether the order was paid.
func (s *Service) PaymentsOfOrder(ctx context.Context, orderID string) ([]Payment, error) {
	if !ValidID(orderID) {
		return nil, validation.New(validation.FieldError{Field: "orderId", Message: "must be an order id (UUID)"})
	}
	return s.store.Payments(ctx, Filter{OrderID: orderID, Page: Page{Limit: maxPaymentsOfOrder}})
}

// AuditLog lists the audit log (for admins).
func (s *Service) AuditLog(ctx context.Context, f AuditFilter) ([]AuditEntry, error) {
	return s.store.Audit(ctx, f)
}

// ValidID reports whether id is a UUID in its canonical 36-character form: the only form
// payment and order ids are issued in, so nothing else is ever looked up or sent on to
// another service.
func ValidID(id string) bool {
	if len(id) != 36 {
		return false
	}
	_, err := uuid.Parse(id)
	return err == nil
}

func fingerprint(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}
