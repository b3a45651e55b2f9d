package store

import (
	"context"
	"encoding/json"
	"fmt"

	"example.com/shop/order/internal/order"
	"example.com/shop/platform/database"
)

// Audit appends an entry to the audit log. Call it in the same Tx as the action it records,
// so there is never an action without its entry, nor an entry for an action rolled back.
func (s *Store) Audit(ctx context.Context, e order.AuditEntry) error {
	details, err := json.Marshal(e.Details)
	if err != nil {
		return fmt.Errorf("store: encoding audit details: %w", err)
	}
	r := auditRow{
		At: database.Now(), ActorSubject: e.ActorSubject, ActorUsername: e.ActorUsername,
		Action: e.Action, TargetID: e.TargetID, Details: string(details), RequestID: e.RequestID,
	}
	return s.db.WithContext(ctx).Create(&r).Error
}

// AuditFilter narrows the audit log; zero fields do not filter.
type AuditFilter struct {
	// Action is one of the order.Action* names.
	Action string
	// Actor is who acted: a username, or a service account's client. Matched exactly.
	Actor string
}

// AuditLog lists the audit log, newest first.
func (s *Store) AuditLog(ctx context.Context, f AuditFilter, p Page) ([]order.AuditEntry, error) {
	db := p.apply(s.db.WithContext(ctx))
	if f.Action != "" {
		db = db.Where("action = ?", f.Action)
	}
	if f.Actor != "" {
		db = db.Where("actor_username = ?", f.Actor)
	}
	var rows []auditRow
	if err := db.Order("id DESC").Find(&rows).Error; err != nil {
		return nil, err
	}
	out := make([]order.AuditEntry, len(rows))
	for i, r := range rows {
		out[i] = order.AuditEntry{
			ID: r.ID, At: r.At.UTC(), ActorSubject: r.ActorSubject, ActorUsername: r.ActorUsername,
			Action: r.Action, TargetID: r.TargetID, RequestID: r.RequestID,
		}
		if err := json.Unmarshal([]byte(r.Details), &out[i].Details); err != nil {
			return nil, fmt.Errorf("store: audit entry %d: %w", r.ID, err)
		}
	}
	return out, nil
}
