# Reference numbers for tests/test_surface.py and tests/test_pooling.py (lme4).
# Run: Rscript tests/r/machinery_reference.R  (from the repository root)
suppressPackageStartupMessages(library(lme4))
bp <- read.csv("lmm_teach/data/bp.csv")
m <- lmer(bp ~ time_num + (1 | patient), data = bp, REML = TRUE)
dev <- as.function(lmer(bp ~ time_num + (1 | patient), data = bp, REML = TRUE, devFunOnly = TRUE))
th <- getME(m, "theta"); dmin <- dev(th); q <- qchisq(0.95, 1)
f <- function(x) dev(x) - dmin - q
lo <- uniroot(f, c(0, th), tol = 1e-12)$root
hi <- uniroot(f, c(th, 100 * th), tol = 1e-12)$root
cat(sprintf("bp theta %.10f lo %.10f hi %.10f dev0 %.10f dev2 %.10f\n", th, lo, hi, dev(0), dev(2)))
re <- ranef(m, condVar = TRUE)
cat(sprintf("bp condsd %s\n", paste(sprintf("%.10f", sqrt(attr(re$patient, "postVar")[1, 1, 1:3])), collapse = " ")))
sg <- read.csv("tests/data/singular.csv")
ms <- lmer(y ~ time + (1 | subject), data = sg, REML = TRUE)
devs <- as.function(lmer(y ~ time + (1 | subject), data = sg, REML = TRUE, devFunOnly = TRUE))
ths <- getME(ms, "theta"); fs <- function(x) devs(x) - devs(ths) - q
cat(sprintf("singular theta %.10f hi %.10f\n", ths, uniroot(fs, c(ths, 100), tol = 1e-12)$root))
rs <- read.csv("tests/data/rs_corr.csv")
mr <- lmer(y ~ time + (time | subject), data = rs, REML = TRUE)
devr <- as.function(lmer(y ~ time + (time | subject), data = rs, REML = TRUE, devFunOnly = TRUE))
thr <- getME(mr, "theta")
cat(sprintf("rs theta %s dev %.10f devoff %.10f\n", paste(sprintf("%.10f", thr), collapse = " "), devr(thr),
            devr(c(thr[1] * 1.5, thr[2], thr[3] * 0.5))))
rer <- ranef(mr, condVar = TRUE)
pv <- attr(rer$subject, "postVar")
cat(sprintf("rs condvar1 %.10f %.10f %.10f\n", pv[1, 1, 1], pv[1, 2, 1], pv[2, 2, 1]))
