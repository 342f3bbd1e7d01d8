package chat

// IndexQueued writes the search postings of up to max queued messages now,
// as the background indexer does.
func (s *Service) IndexQueued(max int) (int, error) { return s.indexQueued(max) }

// IndexManually stops the background indexer from starting (call it before
// posting on a new store), so that tests choose what is indexed when.
func (s *Service) IndexManually() {
	s.idxMu.Lock()
	s.idxManual = true
	s.idxMu.Unlock()
}
