package web

import (
	"context"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"example.com/shop/webapp/internal/gateway"
)

// The audit log page: both services' logs merged, newest first, each entry told as a
// sentence with names, order numbers and formatted money instead of ids and JSON.

// auditPageSize is how many entries one page of the merged log shows.
const auditPageSize = 25

// maxAuditOffset is the furthest the services page (their offset limit).
const maxAuditOffset = 100_000

// auditAction is an action the log records, with the words the filter shows for it and
// the service whose log holds it.
type auditAction struct {
	Name, Label, Service string
}

var auditActions = []auditAction{
	{"product.create", "Product added", gateway.AuditOrder},
	{"product.update", "Product changed", gateway.AuditOrder},
	{"product.retire", "Product retired", gateway.AuditOrder},
	{"order.delete", "Order deleted", gateway.AuditOrder},
	{"order.refund-recorded", "Refund recorded on an order", gateway.AuditOrder},
	{"order.payment-settled", "Payment settled late", gateway.AuditOrder},
	{"order.expire", "Unpaid order expired", gateway.AuditOrder},
	{"payment.refund", "Payment refunded", gateway.AuditPayment},
}

// auditServices are the logs the service filter offers.
var auditServices = []struct{ Name, Label string }{
	{gateway.AuditOrder, "Catalog and orders"},
	{gateway.AuditPayment, "Payments"},
}

// auditFilter is the page's query: filters, and where each service's log resumes. Merging
// two logs page by page needs an offset per log, not one offset into the merged list.
type auditFilter struct {
	Action, Actor, Service string
	Offsets                map[string]int
}

func readAuditFilter(c *fiber.Ctx) auditFilter {
	f := auditFilter{Offsets: map[string]int{}}
	if i := slices.IndexFunc(auditActions, func(a auditAction) bool { return a.Name == c.Query("action") }); i >= 0 {
		f.Action = auditActions[i].Name
	}
	switch c.Query("service") {
	case gateway.AuditOrder:
		f.Service = gateway.AuditOrder
	case gateway.AuditPayment:
		f.Service = gateway.AuditPayment
	}
	// A view into the request's buffer, like every query value: fine, as the filter lives
	// only as long as this request.
	f.Actor = strings.TrimSpace(c.Query("actor"))
	if len(f.Actor) > 100 {
		f.Actor = f.Actor[:100]
	}
	for _, s := range auditServices {
		if n, err := strconv.Atoi(c.Query("from-" + s.Name)); err == nil && n > 0 && n <= maxAuditOffset {
			f.Offsets[s.Name] = n
		}
	}
	return f
}

// services are the logs this filter reads: the one an action belongs to, the one chosen,
// or both.
func (f auditFilter) services() []string {
	if i := slices.IndexFunc(auditActions, func(a auditAction) bool { return a.Name == f.Action }); i >= 0 {
		if f.Service != "" && f.Service != auditActions[i].Service {
			return nil // an action the chosen service does not record: nothing matches
		}
		return []string{auditActions[i].Service}
	}
	if f.Service != "" {
		return []string{f.Service}
	}
	return []string{gateway.AuditOrder, gateway.AuditPayment}
}

// link is the page's URL for this filter, resuming each log at offsets.
func (f auditFilter) link(offsets map[string]int) string {
	q := url.Values{}
	for k, v := range map[string]string{"action": f.Action, "actor": f.Actor, "service": f.Service} {
		if v != "" {
			q.Set(k, v)
		}
	}
	for s, n := range offsets {
		if n > 0 {
			q.Set("from-"+s, strconv.Itoa(n))
		}
	}
	if len(q) == 0 {
		return "/admin/audit"
	}
	return "/admin/audit?" + q.Encode()
}

// auditLine is one entry as the page shows it.
type auditLine struct {
	At       time.Time
	Source   string
	Action   string
	Sentence sentence
}

func (h *handlers) adminAudit(c *fiber.Ctx) error {
	f := readAuditFilter(c)
	api := caller(c)
	// A page's worth from each log, from where that log's previous page stopped; the
	// newest of them make this page. Reading one more than shown tells whether there is
	// an older page.
	var merged []gateway.AuditEntry
	more := false
	for _, s := range f.services() {
		entries, err := api.Audit(ctx(c), s, gateway.AuditQuery{Action: f.Action, Actor: f.Actor, Offset: f.Offsets[s], Limit: auditPageSize + 1})
		if err != nil {
			return h.apiError(c, err)
		}
		if len(entries) > auditPageSize {
			entries, more = entries[:auditPageSize], true
		}
		merged = append(merged, entries...)
	}
	slices.SortStableFunc(merged, func(a, b gateway.AuditEntry) int { return b.At.Compare(a.At) })
	if len(merged) > auditPageSize {
		merged, more = merged[:auditPageSize], true
	}
	next := maps.Clone(f.Offsets)
	for _, e := range merged {
		next[e.Source]++
	}
	numbers := h.orderNumbers(ctx(c), api, merged)
	lines := make([]auditLine, len(merged))
	for i, e := range merged {
		lines[i] = auditLine{At: e.At, Source: e.Source, Action: e.Action, Sentence: describe(e, numbers)}
	}
	data := map[string]any{
		"Lines": lines, "Actions": auditActions, "Services": auditServices,
		"Action": f.Action, "Actor": f.Actor, "Service": f.Service,
	}
	if len(f.Offsets) > 0 {
		data["Newest"] = f.link(nil)
	}
	if more && !slices.ContainsFunc(slices.Collect(maps.Values(next)), func(n int) bool { return n > maxAuditOffset }) {
		data["Older"] = f.link(next)
	}
	return h.render(c, page{name: "admin/audit", title: "Admin: audit log", nav: "admin", sub: "audit", data: data})
}

// maxNumberLookups bounds the orders one page looks up to name them by number.
const maxNumberLookups = auditPageSize

// orderNumbers finds the numbers of orders the entries name by id only: the payment
// service's entries (it does not know order numbers) and order entries written before
// orders had numbers. An order that cannot be read (deleted since) stays unnumbered.
func (h *handlers) orderNumbers(c context.Context, api *gateway.Caller, entries []gateway.AuditEntry) map[string]int64 {
	numbers := map[string]int64{}
	var missing []string
	for _, e := range entries {
		id := orderOf(e)
		if id == "" {
			continue
		}
		if n, ok := number(e.Detail["number"]); ok {
			numbers[id] = n
		} else if !slices.Contains(missing, id) {
			missing = append(missing, id)
		}
	}
	for _, id := range missing[:min(len(missing), maxNumberLookups)] {
		if _, known := numbers[id]; known || !validID(id) {
			continue
		}
		if o, err := api.Order(c, id); err == nil && o.Number > 0 {
			numbers[id] = o.Number
		}
	}
	return numbers
}

// orderOf is the id of the order an entry is about, if any.
func orderOf(e gateway.AuditEntry) string {
	if kind, id, _ := strings.Cut(e.Resource, "/"); kind == "order" {
		return id
	}
	if id, ok := e.Detail["orderId"].(string); ok {
		return id
	}
	return ""
}

// phrase is a piece of a sentence: text, linked when Href is set. Sentences are built of
// phrases rather than HTML so the template escapes every name that came from a request.
type phrase struct {
	Text, Href string
}

type sentence []phrase

// sentenceBuilder collects phrases.
type sentenceBuilder struct{ s sentence }

func (b *sentenceBuilder) text(parts ...string) *sentenceBuilder {
	b.s = append(b.s, phrase{Text: strings.Join(parts, "")})
	return b
}

func (b *sentenceBuilder) link(text, href string) *sentenceBuilder {
	b.s = append(b.s, phrase{Text: text, Href: href})
	return b
}

// describe tells an audit entry as a sentence. Details the entry lacks (entries written by
// an older release) leave words out; an action this console does not know is told in
// general words, never by its code.
func describe(e gateway.AuditEntry, numbers map[string]int64) sentence {
	b := &sentenceBuilder{}
	who := actorName(e.Actor.Username)
	d := e.Detail
	kind, id, _ := strings.Cut(e.Resource, "/")
	productName := func() string { return orDefault(str(d["name"]), "a product") }
	orderRef := func(orderID string, linked bool) {
		text := "an order"
		if n, ok := numbers[orderID]; ok {
			text = "order " + strconv.FormatInt(n, 10)
		}
		if linked && validID(orderID) {
			b.link(text, "/admin/orders/"+orderID)
		} else {
			b.text(text)
		}
	}
	switch e.Action {
	case "product.create":
		b.text(who, " added ").link(productName(), productHref(id)).text(" to the catalog")
		if p, ok := money(d["price"]); ok {
			b.text(" at ", formatMoney(p))
		}
		if n, ok := number(d["stock"]); ok {
			b.text(", ", strconv.FormatInt(n, 10), " in stock")
		}
		if active, ok := d["active"].(bool); ok && !active {
			b.text(", hidden from shoppers")
		}
		b.text(".")
	case "product.update":
		b.text(who, " changed ").link(productName(), productHref(id))
		changes := productChanges(d["changes"])
		if len(changes) == 0 {
			b.text(", but nothing in it was different.")
			break
		}
		b.text(": ", strings.Join(changes, "; "), ".")
	case "product.retire":
		b.text(who, " retired ", productName(), ": shoppers no longer see it.")
	case "order.delete":
		b.text(who, " deleted ")
		orderRef(id, false)
		var facts []string
		if c := str(d["customer"]); c != "" {
			facts = append(facts, "placed by "+c)
		}
		if s := str(d["status"]); s != "" {
			facts = append(facts, strings.ReplaceAll(s, "_", " "))
		}
		if t, ok := money(d["total"]); ok {
			facts = append(facts, formatMoney(t))
		}
		if len(facts) > 0 {
			b.text(" (", strings.Join(facts, ", "), ")")
		}
		b.text(".")
	case "order.refund-recorded":
		b.text(who, " reported a refund on ")
		orderRef(id, true)
		if m, ok := money(d["refunded"]); ok {
			b.text(": ", formatMoney(m), " refunded so far")
		}
		if str(d["status"]) == "refunded" {
			b.text(", the whole order")
		}
		b.text(".")
	case "order.payment-settled":
		b.text(who, " marked ")
		orderRef(id, true)
		b.text(" paid")
		if m, ok := money(d["amount"]); ok {
			b.text(" (", formatMoney(m), ")")
		}
		if str(d["by"]) == "reconciliation" {
			b.text(" after checking with the payment service, as the checkout never heard back.")
		} else {
			b.text(" on the payment service's notice, as the checkout never heard back.")
		}
	case "order.expire":
		b.text(who, " cancelled ")
		orderRef(id, true)
		var facts []string
		if c := str(d["customer"]); c != "" {
			facts = append(facts, "placed by "+c)
		}
		if t, ok := money(d["total"]); ok {
			facts = append(facts, formatMoney(t))
		}
		if len(facts) > 0 {
			b.text(" (", strings.Join(facts, ", "), ")")
		}
		b.text(": it was not paid in time, so its items went back on sale.")
	case "payment.refund":
		b.text(who, " refunded ")
		if n, ok := number(d["amount"]); ok {
			b.text(formatMoney(gateway.Money{Amount: n, Currency: orDefault(str(d["currency"]), "EUR")}), " of ")
		}
		b.text("the payment for ")
		orderRef(str(d["orderId"]), true)
		if full, _ := d["fullyRefunded"].(bool); full {
			b.text(": nothing of it is left to refund")
		}
		b.text(".")
	default:
		b.text(who, " made a change this console cannot describe yet")
		switch kind {
		case "order":
			b.text(", to ")
			orderRef(id, true)
		case "product":
			b.text(", to ").link(productName(), productHref(id))
		case "payment":
			b.text(", to a payment")
		}
		b.text(".")
	}
	return b.s
}

// actorName names who acted: a person by username, a service by what it is.
func actorName(username string) string {
	switch username {
	case "":
		return "Someone"
	case "payment-service":
		return "The payment service"
	case "order-service":
		return "The order service"
	}
	return username
}

func productHref(id string) string {
	if !validID(id) {
		return ""
	}
	return "/admin/products/" + id + "/edit"
}

// productChanges tells a product update's changes ({field: {from, to}}), in a fixed order.
func productChanges(v any) []string {
	changes, _ := v.(map[string]any)
	var out []string
	for _, field := range []string{"name", "price", "stock", "description", "active"} {
		c, ok := changes[field].(map[string]any)
		if !ok {
			continue
		}
		from, to := c["from"], c["to"]
		switch field {
		case "name":
			out = append(out, "renamed from “"+str(from)+"” to “"+str(to)+"”")
		case "price":
			f, fok := money(from)
			t, tok := money(to)
			if fok && tok {
				out = append(out, "price from "+formatMoney(f)+" to "+formatMoney(t))
			}
		case "stock":
			f, fok := number(from)
			t, tok := number(to)
			if fok && tok {
				out = append(out, "stock from "+strconv.FormatInt(f, 10)+" to "+strconv.FormatInt(t, 10))
			}
		case "description":
			out = append(out, "new description")
		case "active":
			if on, _ := to.(bool); on {
				out = append(out, "back in the catalog")
			} else {
				out = append(out, "hidden from shoppers")
			}
		}
	}
	return out
}

// str is v when it is a string.
func str(v any) string {
	s, _ := v.(string)
	return s
}

// number reads a JSON number that is a whole number.
func number(v any) (int64, bool) {
	f, ok := v.(float64)
	if !ok || f != float64(int64(f)) {
		return 0, false
	}
	return int64(f), true
}

// money reads a Money object ({amount, currency}) from an entry's details.
func money(v any) (gateway.Money, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		return gateway.Money{}, false
	}
	n, ok := number(m["amount"])
	cur := str(m["currency"])
	if !ok || cur == "" {
		return gateway.Money{}, false
	}
	return gateway.Money{Amount: n, Currency: cur}, true
}
