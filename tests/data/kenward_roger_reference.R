# Kenward-Roger reference numbers beyond the shared cases' fixed tables (tests/test_lmm_kenward_roger.py).
# Usage (from the repository root): Rscript tests/data/kenward_roger_reference.R tests/data
# Reads DIR/cases.json and DIR/<case>.csv, writes DIR/kenward_roger.expected.json.
# lme4 1.1-31, lmerTest 3.1-3, pbkrtest 0.5.2. Per case:
#   numeric:      lmer(y ~ time [* between] + (1 | subject) | (time | subject) [+ (1 | cluster)])
#                 anova(m, type = 3, ddf = "Kenward-Roger")
#   categorical:  lmer(y ~ factor(visit) [* between] + (1 | subject) [+ (1 | cluster)])
#                 summary(m, ddf = "Kenward-Roger")$coefficients, anova(m, type = 3, ddf = "Kenward-Roger")
#   categorical_slope (random-slope cases): lmer(y ~ factor(visit) + (time | subject)), the same two tables
# Every fit with tight nloptwrap tolerances (the optimum itself, not where a default stopped).
suppressPackageStartupMessages({library(lme4); library(lmerTest); library(jsonlite); library(pbkrtest)})
ctrl <- lmerControl(optimizer = "nloptwrap", optCtrl = list(xtol_abs = 1e-12, ftol_abs = 1e-14, xtol_rel = 1e-12, maxeval = 1e5))
dir <- commandArgs(TRUE)[1]
cases <- fromJSON(file.path(dir, "cases.json"))
tables <- function(m) {
  kr <- summary(m, ddf = "Kenward-Roger")$coefficients
  a <- anova(m, type = 3, ddf = "Kenward-Roger")
  list(formula = paste(deparse(formula(m)), collapse = ""),
       fixed = lapply(seq_len(nrow(kr)), function(i) list(term = rownames(kr)[i], estimate = kr[i, 1],
                 se = kr[i, 2], df = kr[i, 3], t = kr[i, 4], p = kr[i, 5])),
       tests = lapply(seq_len(nrow(a)), function(i) list(term = rownames(a)[i], F = a[i, "F value"],
                 df_num = a[i, "NumDF"], df_den = a[i, "DenDF"], p = a[i, "Pr(>F)"])))
}
out <- list()
for (name in names(cases)) {
  o <- cases[[name]]
  d <- read.csv(file.path(dir, paste0(name, ".csv")), stringsAsFactors = TRUE)
  Y <- o$y; TM <- o$time; S <- o$subject
  d[[S]] <- factor(d[[S]])
  d$visit_f <- factor(d[[o$visit]])
  btw <- if (is.null(o$between)) "" else paste0(" * ", o$between)
  re <- if (isTRUE(o$random_slope)) paste0("(", TM, " | ", S, ")") else paste0("(1 | ", S, ")")
  cl <- if (is.null(o$cluster)) "" else paste0(" + (1 | ", o$cluster, ")")
  res <- list()
  res$numeric <- tables(lmer(as.formula(paste0(Y, " ~ ", TM, btw, " + ", re, cl)), data = d, control = ctrl))
  res$categorical <- tables(lmer(as.formula(paste0(Y, " ~ visit_f", btw, " + (1 | ", S, ")", cl)), data = d, control = ctrl))
  if (isTRUE(o$random_slope))
    res$categorical_slope <- tables(lmer(as.formula(paste0(Y, " ~ visit_f + (", TM, " | ", S, ")")), data = d, control = ctrl))
  out[[name]] <- res
}
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE, null = "null"), file.path(dir, "kenward_roger.expected.json"))
