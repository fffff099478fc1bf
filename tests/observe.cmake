# Seeing inside: the list index and the histograms as units; List, Workers,
# Watch and Metrics against a real broker.
rc_add_test(test_listidx SOURCES test_listidx.c LIBS rc_broker)
rc_add_test(test_metrics SOURCES test_metrics.c LIBS rc_broker)
rc_add_test(test_observe SOURCES test_observe.c LIBS rc_testkit TIMEOUT 120)
